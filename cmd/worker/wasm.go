package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/shardwork/shardwork/core/records"
)

func (c *cli) wasmProcessor(ctx context.Context, cfg *config, key, name, from, path string, log *slog.Logger) (records.Processor, closer, error) {
	return records.Processor{}, nil, badValue(key, name, from, "WebAssembly plugins are not available in this build")
}

// loadHandler loads a record handler plugin; config is its JSON
// configuration (nil for none).
func (c *cli) loadHandler(ctx context.Context, cfg *config, key, path, from string, config []byte, log *slog.Logger) (records.Handler, closer, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, badValue(key, path, from, "plugin file not found")
	}
	return nil, nil, badValue(key, path, from, "WebAssembly plugins are not available in this build")
}
