package main

import (
	"context"
	"log/slog"

	"github.com/shardwork/shardwork/core/records"
)

func (c *cli) wasmProcessor(ctx context.Context, cfg *config, key, name, from, path string, log *slog.Logger) (records.Processor, closer, error) {
	return records.Processor{}, nil, badValue(key, name, from, "WebAssembly plugins are not available in this build")
}
