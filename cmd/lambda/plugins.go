package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
)

// pluginSet holds the plugins a function loaded at cold start.
type pluginSet struct {
	handler records.Handler
	ser     records.Serializer
	agg     records.Aggregator
	closers []func(context.Context) error
}

func (p pluginSet) close(ctx context.Context) error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// maxInvocation is Lambda's longest function timeout.
const maxInvocation = 15 * time.Minute

// tmpCache is where plugins are compiled when the package ships no usable
// compilation cache (/tmp is the only writable place on Lambda).
func tmpCache() string { return filepath.Join(os.TempDir(), "shardwork-plugin-cache") }

// loadPlugin loads one plugin from the configured compilation cache. A
// shipped cache sits in the read-only package: when it does not hold this
// plugin for this wazero version and architecture, wazero cannot add it
// there, so the plugin is compiled again into /tmp.
func loadPlugin(ctx context.Context, cfg config, path string, config []byte, log *slog.Logger) (*host.Plugin, error) {
	opts := func(dir string) []host.Option {
		// A call is bounded by the invocation's deadline (its context);
		// the host's default per-call limit (5 s) would cut a large batch
		// short on a slow, small function and make it retry and bisect.
		o := []host.Option{host.WithCacheDir(dir), host.WithLogger(log), host.WithCallTimeout(maxInvocation)}
		if cfg.pluginTrusted {
			o = append(o, host.WithTrusted())
		}
		if len(config) > 0 {
			o = append(o, host.WithConfig(config))
		}
		return o
	}
	start := time.Now()
	p, err := host.Load(ctx, path, opts(cfg.cacheDir)...)
	if err != nil && cfg.shippedCache != "" && cfg.cacheDir == cfg.shippedCache && !errors.Is(err, host.ErrNotFound) {
		log.LogAttrs(ctx, slog.LevelWarn, "plugin not loadable from the compilation cache; compiling into /tmp",
			slog.String("plugin", path), slog.String("cache", cfg.cacheDir), slog.String("error", err.Error()))
		p, err = host.Load(ctx, path, opts(tmpCache())...)
	}
	if err != nil {
		return nil, fmt.Errorf("load plugin %s: %w", path, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "plugin loaded", slog.String("plugin", p.Name()), slog.String("path", path),
		slog.Duration("took", time.Since(start)))
	return p, nil
}

// loadPlugins loads the plugins the configuration names, once per cold
// start.
func loadPlugins(ctx context.Context, cfg config, log *slog.Logger) (set pluginSet, err error) {
	defer func() {
		if err != nil {
			_ = set.close(ctx)
			set = pluginSet{}
		}
	}()
	load := func(path string, config []byte) (*host.Plugin, error) {
		p, err := loadPlugin(ctx, cfg, path, config, log)
		if err != nil {
			return nil, err
		}
		set.closers = append(set.closers, p.Close)
		return p, nil
	}
	if cfg.handlerPlugin != "" && cfg.handler == handlerConsumer {
		p, err := load(cfg.handlerPlugin, cfg.handlerPluginConfig)
		if err != nil {
			return set, err
		}
		if set.handler, err = p.Handler(); err != nil {
			return set, fmt.Errorf("SHARDWORK_HANDLER_PLUGIN %s: %w", cfg.handlerPlugin, err)
		}
	}
	if cfg.serializerPlugin != "" {
		p, err := load(cfg.serializerPlugin, nil)
		if err != nil {
			return set, err
		}
		if set.ser, err = p.Serializer(); err != nil {
			return set, fmt.Errorf("SHARDWORK_SERIALIZER_PLUGIN %s: %w", cfg.serializerPlugin, err)
		}
	}
	if cfg.aggregatorPlugin != "" {
		p, err := load(cfg.aggregatorPlugin, nil)
		if err != nil {
			return set, err
		}
		if set.agg, err = p.Aggregator(); err != nil {
			return set, fmt.Errorf("SHARDWORK_AGGREGATOR_PLUGIN %s: %w", cfg.aggregatorPlugin, err)
		}
	}
	return set, nil
}

// compilePlugins is `bootstrap compile-plugins DIR FILE.wasm...`: it
// compiles each plugin into the compilation cache DIR, which a package ships
// so that cold starts skip compilation. The cache is only valid for the
// wazero version and architecture of this bootstrap. Each plugin is loaded
// exactly as the function loads it, sandboxed and trusted (wazero's cache
// key covers the runtime settings, such as interrupting calls on deadline,
// not only the module).
func compilePlugins(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New("usage: bootstrap compile-plugins CACHE_DIR PLUGIN.wasm...")
	}
	dir := args[0]
	log := slog.New(slog.DiscardHandler)
	for _, path := range args[1:] {
		start := time.Now()
		for _, trusted := range []bool{false, true} {
			p, err := loadPlugin(ctx, config{cacheDir: dir, pluginTrusted: trusted}, path, nil, log)
			if err != nil {
				return err
			}
			if err := p.Close(ctx); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "compiled %s into %s in %v\n", path, dir, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
