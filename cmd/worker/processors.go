package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/shardwork/shardwork/core/records"
)

// processorNames are the native processors, byte-compatible with
// async-kinesis.
var processorNames = records.Names()

// closer releases what a processor or handler holds (a plugin's instances).
type closer func(context.Context) error

func noClose(context.Context) error { return nil }

// resolveProcessor returns the processor named by the config key: a native
// one by name, or a WebAssembly plugin as wasm:PATH.
func (c *cli) resolveProcessor(ctx context.Context, cfg *config, key string, log *slog.Logger) (records.Processor, closer, error) {
	return c.processorByName(ctx, cfg, key, cfg.str(key), cfg.from(key), log)
}

// processorByName resolves name, set by key (found in from, for messages).
func (c *cli) processorByName(ctx context.Context, cfg *config, key, name, from string, log *slog.Logger) (records.Processor, closer, error) {
	if path, ok := strings.CutPrefix(name, "wasm:"); ok {
		if path == "" {
			return records.Processor{}, nil, badValue(key, name, from, "wasm: needs a plugin path, e.g. wasm:plugins/json.wasm")
		}
		if _, err := os.Stat(path); err != nil {
			return records.Processor{}, nil, badValue(key, name, from, "plugin file not found: "+path)
		}
		return c.wasmProcessor(ctx, cfg, key, name, from, path, log)
	}
	p, err := nativeProcessor(name)
	if err != nil {
		return records.Processor{}, nil, badValue(key, name, from, "unknown processor (want "+strings.Join(processorNames, ", ")+" or wasm:PATH)")
	}
	return p, noClose, nil
}

// badValue reports a value that failed a check beyond its syntax.
func badValue(key, value, from, why string) error {
	if from != "" {
		return usagef("invalid config: %s = %q (from %s): %s", key, value, from, why)
	}
	return usagef("invalid config: %s = %q: %s", key, value, why)
}

var errNoProcessor = errors.New("unknown processor")

// itemFromLine turns one input line into the item a processor serializes:
// the text for string processors, the JSON value (kept byte for byte) for
// the JSON family, the decoded value for msgpack.
func itemFromLine(procName string, line []byte) (any, error) {
	switch procName {
	case "string", "kpl-string":
		return string(line), nil
	}
	if !jsonValid(line) {
		return nil, fmt.Errorf("not valid JSON (use --processor string for raw text)")
	}
	return jsonItem(procName, line)
}

func jsonValid(b []byte) bool { return json.Valid(b) }

// jsonItem keeps JSON text as json.RawMessage, so what was put is what is
// read back byte for byte (once compact); msgpack needs the decoded value;
// a plugin gets the JSON text too (its items cross the boundary as JSON).
func jsonItem(procName string, line []byte) (any, error) {
	switch {
	case procName == "msgpack":
		var v any
		err := json.Unmarshal(line, &v)
		return v, err
	}
	return json.RawMessage(slices.Clone(line)), nil
}
