package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "shardwork lambda:", err)
		os.Exit(1)
	}
}

// run is the bootstrap: `bootstrap compile-plugins DIR FILE.wasm...` fills a
// compilation cache at build time; otherwise it reads the configuration,
// builds the function once (cold start) and serves invocations until the
// runtime stops it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "compile-plugins" {
		return compilePlugins(ctx, args[2:], stdout)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.logLevel}))
	fn, closeFn, err := setup(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Every invocation flushes what it produced, so nothing is pending when
	// Lambda freezes or ends the process; closing is for a runtime API
	// loop that returns (StartWithOptions normally exits the process).
	defer closeFn(context.WithoutCancel(ctx))
	lambda.StartWithOptions(fn, lambda.WithContext(ctx))
	return nil
}

// setup builds the handler the configuration names, with its processor,
// plugins and Kinesis client. It runs once per cold start.
func setup(ctx context.Context, cfg config, log *slog.Logger) (any, func(context.Context) error, error) {
	proc, err := records.ByName(cfg.processor)
	if err != nil {
		return nil, nil, err
	}
	plugins, err := loadPlugins(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	var closeAll func(context.Context) error
	fail := func(err error) (any, func(context.Context) error, error) {
		_ = closeAll(ctx)
		return nil, nil, err
	}
	if plugins.ser != nil {
		proc.Serializer = plugins.ser
	}
	if plugins.agg != nil {
		proc.Aggregator = plugins.agg
	}
	var closers []func(context.Context) error
	closeAll = func(ctx context.Context) error {
		errs := []error{plugins.close(ctx)}
		for _, c := range closers {
			errs = append(errs, c(ctx))
		}
		return errors.Join(errs...)
	}
	newSink := func(stream string) (*producerSink, error) {
		client, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{})
		if err != nil {
			return nil, fmt.Errorf("kinesis client: %w", err)
		}
		s, err := newProducerSink(ctx, client, stream, proc, cfg.putAttempts)
		if err != nil {
			return nil, err
		}
		closers = append(closers, s.Close)
		return s, nil
	}
	switch cfg.handler {
	case handlerConsumer:
		c := &consumer{proc: proc, skipBad: cfg.skipUndecodable, log: log}
		switch {
		case plugins.handler != nil:
			c.handler = newChunkedHandler(plugins.handler)
		case cfg.builtin == builtinForward:
			c.handler = forwardHandler{}
		case cfg.builtin == builtinDiscard:
			c.handler = discardHandler{}
		default:
			c.handler = logHandler{log: log}
		}
		// Decoding checks every record against the processor's format;
		// the built-in handlers that only pass bytes on skip it unless a
		// serializer plugin was asked for.
		_, logs := c.handler.(logHandler)
		c.decode = logs || plugins.handler != nil || plugins.ser != nil
		if cfg.outputStream != "" {
			s, err := newSink(cfg.outputStream)
			if err != nil {
				return fail(err)
			}
			c.out = s
		}
		return kinesisInvoker{c}, closeAll, nil
	case handlerProducer:
		s, err := newSink(cfg.stream)
		if err != nil {
			return fail(err)
		}
		p := &producer{ser: proc.Serializer, out: s, mode: modeFor(cfg.processor, plugins.ser != nil), pkField: cfg.partitionKeyField, log: log}
		return p.Handle, closeAll, nil
	}
	return fail(fmt.Errorf("%w: _HANDLER=%q", errInvalidConfig, cfg.handler))
}
