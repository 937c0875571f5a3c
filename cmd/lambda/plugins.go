package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/shardwork/shardwork/core/records"
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

func loadPlugins(ctx context.Context, cfg config, log *slog.Logger) (pluginSet, error) {
	if cfg.usesPlugins() {
		return pluginSet{}, errors.New("this bootstrap was built without WebAssembly plugin support")
	}
	return pluginSet{}, nil
}

func compilePlugins(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("this bootstrap was built without WebAssembly plugin support")
}
