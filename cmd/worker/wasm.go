package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/abi"
	"github.com/shardwork/shardwork/plugins/host"
)

// loadPlugin loads a WebAssembly plugin with the worker's plugin settings.
// Every load failure (missing file, not WebAssembly, wrong ABI version,
// wrong kind, forbidden import, init error) is a one-line usage error that
// names the setting it came from.
func (c *cli) loadPlugin(ctx context.Context, cfg *config, key, value, path, from string, pluginConfig []byte, log *slog.Logger, kinds ...abi.Kind) (*host.Plugin, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, badValue(key, value, from, "plugin file not found")
	}
	opts := []host.Option{host.WithLogger(log.With("plugin", path))}
	if dir := cfg.str("plugin_cache_dir"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, badValue("plugin_cache_dir", dir, cfg.from("plugin_cache_dir"), err.Error())
		}
		opts = append(opts, host.WithCacheDir(dir))
	}
	if cfg.bool("plugin_trusted") {
		opts = append(opts, host.WithTrusted())
	}
	if cfg.isSet("plugin_call_timeout") {
		opts = append(opts, host.WithCallTimeout(cfg.dur("plugin_call_timeout")))
	}
	if pluginConfig != nil {
		opts = append(opts, host.WithConfig(pluginConfig))
	}
	if len(kinds) > 0 {
		opts = append(opts, host.WithKinds(kinds...))
	}
	p, err := host.Load(ctx, path, opts...)
	if err != nil {
		return nil, badValue(key, value, from, pluginProblem(err))
	}
	return p, nil
}

// pluginProblem says in a few words what is wrong with a plugin.
func pluginProblem(err error) string {
	what := "cannot load plugin"
	switch {
	case errors.Is(err, host.ErrNotFound):
		what = "plugin file not found"
	case errors.Is(err, host.ErrInvalidModule):
		what = "not a WebAssembly module"
	case errors.Is(err, host.ErrABIVersion):
		what = "plugin built for another ABI version"
	case errors.Is(err, host.ErrWrongKind):
		what = "wrong plugin kind"
	case errors.Is(err, host.ErrMissingExport):
		what = "plugin does not export the ABI"
	case errors.Is(err, host.ErrForbiddenImport):
		what = "plugin imports what the host does not grant"
	case errors.Is(err, host.ErrInit):
		what = "plugin rejected its configuration"
	}
	return what + ": " + oneLine(err.Error())
}

// wasmProcessor builds a processor from a serializer and/or aggregator
// plugin: a plugin that is only a serializer gets the pass-through
// aggregator (one item per Kinesis record); one that is only an aggregator
// gets the JSON serializer.
func (c *cli) wasmProcessor(ctx context.Context, cfg *config, key, name, from, path string, log *slog.Logger) (records.Processor, closer, error) {
	p, err := c.loadPlugin(ctx, cfg, key, name, path, from, nil, log)
	if err != nil {
		return records.Processor{}, nil, err
	}
	closeIt := func(ctx context.Context) error { return p.Close(ctx) }
	d := p.Description()
	proc := records.Processor{Name: name, Serializer: records.JSONSerializer{}, Aggregator: records.SimpleAggregator{}}
	if !d.Has(abi.KindSerializer) && !d.Has(abi.KindAggregator) {
		closeIt(ctx)
		return records.Processor{}, nil, badValue(key, name, from, fmt.Sprintf("wrong plugin kind: plugin %q is %v, not a serializer or aggregator", d.Name, d.Kinds))
	}
	if d.Has(abi.KindSerializer) {
		s, err := p.Serializer()
		if err != nil {
			closeIt(ctx)
			return records.Processor{}, nil, badValue(key, name, from, pluginProblem(err))
		}
		proc.Serializer = s
	}
	if d.Has(abi.KindAggregator) {
		a, err := p.Aggregator()
		if err != nil {
			closeIt(ctx)
			return records.Processor{}, nil, badValue(key, name, from, pluginProblem(err))
		}
		proc.Aggregator = a
	}
	return proc, closeIt, nil
}

// loadHandler loads a record handler plugin; pluginConfig is its JSON
// configuration (nil for none).
func (c *cli) loadHandler(ctx context.Context, cfg *config, key, path, from string, pluginConfig []byte, log *slog.Logger) (records.Handler, closer, error) {
	p, err := c.loadPlugin(ctx, cfg, key, path, path, from, pluginConfig, log, abi.KindHandler)
	if err != nil {
		return nil, nil, err
	}
	h, err := p.Handler()
	if err != nil {
		p.Close(ctx)
		return nil, nil, badValue(key, path, from, pluginProblem(err))
	}
	return h, func(ctx context.Context) error { return p.Close(ctx) }, nil
}
