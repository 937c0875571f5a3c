package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shardwork/shardwork/core/shards"
)

var (
	optHandler       = &option{key: "handler", usage: "record handler plugin (.wasm) to run on each batch"}
	optHandlerConfig = &option{key: "handler_config", usage: "JSON configuration given to the handler plugin's init"}
	optOutputStream  = &option{key: "output_stream", usage: "stream to put the handler's emitted records into (without a handler: a copy of every record)"}
	optOutputProc    = &option{key: "output_processor", usage: "processor of the output stream (default: --processor)"}
	optMaxRecords    = &option{key: "max_records", usage: "stop after this many records (0: no limit)", def: "0", kind: kInt, min: 0}
	optIdleExit      = &option{key: "idle_exit", usage: "stop when no record arrived for this long since the last record or shard taken (0: never)", def: "0", kind: kDuration, min: 0}
	optMaxBatch      = &option{key: "max_batch_size", usage: "most records per handler call", kind: kInt, min: 1}
	optSleepCaughtUp = &option{key: "sleep_when_caught_up", usage: "how long a shard's reader waits after an empty read at the tip", kind: kDuration, min: 0}
	optRecordLimit   = &option{key: "record_limit", usage: "most Kinesis records per GetRecords call (1-10000); lower it for slow plugins", kind: kInt, min: 1}
	optFetchRate     = &option{key: "shard_fetch_rate", usage: "GetRecords calls per second per shard (1-5)", kind: kInt, min: 1}
)

var consumerOptions = []*option{optCheckpointer, optRedisURL, optApp, optIterator, optAtTimestamp, optHeartbeat,
	optSession, optSleepCaughtUp, optFetchRate, optRecordLimit, optCacheDir, optCallTimeout, optTrusted, optDrain}

func init() {
	registerKeys(optHandler, optHandlerConfig, optOutputStream, optOutputProc, optMaxRecords, optIdleExit, optMaxBatch, optCallTimeout, optTrusted)
	registerKeys(consumerOptions...)
}

// specFromFlags builds consume's single pipeline from its settings.
func specFromFlags(cfg *config, stream string) pipelineSpec {
	s := pipelineSpec{
		Name: "consume", Stream: stream, App: cfg.str("app"), Processor: cfg.str("processor"),
		Handler: cfg.str("handler"), OutputStream: cfg.str("output_stream"),
		OutputProcessor: cfg.str("output_processor"), Checkpointer: cfg.str("checkpointer"),
		IteratorType: cfg.str("iterator_type"), AtTimestamp: cfg.str("at_timestamp"),
		MaxBatchSize: cfg.int("max_batch_size"),
		from:         cfg.from,
	}
	return s
}

func (c *cli) consume(ctx context.Context, args []string) error {
	opts := append([]*option{optStream, optProcessor, optHandler, optHandlerConfig, optOutputStream, optOutputProc, optMaxRecords,
		optIdleExit, optMeta, optMaxBatch}, append(consumerOptions, producerOptions...)...)
	cfg, err := c.loadConfig("consume", args, opts...)
	if err != nil {
		return err
	}
	stream, err := streamName(cfg)
	if err != nil {
		return err
	}
	log := c.newLogger(cfg)
	spec := specFromFlags(cfg, stream)
	if hc := cfg.str("handler_config"); hc != "" {
		if err := json.Unmarshal([]byte(hc), &spec.HandlerConfig); err != nil {
			return badValue("handler_config", hc, cfg.from("handler_config"), "not a JSON object")
		}
	}
	maxRecords := int64(cfg.int("max_records"))
	if maxRecords > 0 && (spec.MaxBatchSize == 0 || int64(spec.MaxBatchSize) > maxRecords) && maxRecords < 500 {
		spec.MaxBatchSize = int(maxRecords)
	}
	cl, err := kinesisClient(ctx, cfg)
	if err != nil {
		return err
	}
	p, err := c.buildPipeline(ctx, cfg, cl, spec, log, nil)
	if err != nil {
		return err
	}
	p.max = maxRecords
	out := newLineWriter(c.stdout, cfg.bool("meta"))
	var outMu sync.Mutex
	if p.handler != nil && p.out == nil {
		p.emitLine = out
	}

	// runCtx is cancelled only to abandon in-flight work after the drain
	// deadline; a signal or a limit first closes the consumer gracefully.
	runCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stopped := make(chan struct{})
	var why string
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		idle := cfg.dur("idle_exit")
		var idleC <-chan time.Time
		var t *time.Ticker
		if idle > 0 {
			t = time.NewTicker(min(idle/4+time.Millisecond, 250*time.Millisecond))
			defer t.Stop()
			idleC = t.C
		}
		p.lastSeen.Store(time.Now().UnixNano())
		flush := time.NewTicker(200 * time.Millisecond)
		defer flush.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-ctx.Done():
				why = "signal"
			case <-p.limitHit:
				why = "max_records"
			case <-idleC:
				if time.Since(time.Unix(0, p.lastSeen.Load())) < idle {
					continue
				}
				why = "idle"
			case <-flush.C:
				outMu.Lock()
				err := out.Flush()
				outMu.Unlock()
				if err != nil {
					why = "output: " + err.Error()
				} else {
					continue
				}
			}
			log.Debug("stopping", "reason", why)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.dur("shutdown_timeout"))
			err := p.consumer.Close(dctx)
			cancel()
			if err != nil {
				log.Error("drain deadline passed; abandoning in-flight records", "err", err)
				abandon()
			}
			return
		}
	}()

	var runErr error
	if p.handler != nil || p.out != nil {
		runErr = p.consumer.Run(runCtx, p)
	} else {
		runErr = c.printRecords(runCtx, p, out, &outMu, maxRecords)
	}
	close(stopped)
	watch.Wait()
	// Make sure leases are released even when Run ended on its own.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.dur("shutdown_timeout"))
	defer cancel()
	closeErr := p.consumer.Close(dctx)
	outMu.Lock()
	flushErr := out.Flush()
	outMu.Unlock()
	pipeErr := p.close(dctx)
	if errors.Is(runErr, shards.ErrClosed) || errors.Is(runErr, errLimitReached) || errors.Is(runErr, context.Canceled) && why != "" {
		runErr = nil
	}
	st := p.consumer.Stats()
	log.Info("consume finished", "records", p.count.Load(), "kinesis_records", st.KinesisRecords,
		"bytes", st.BytesRead, "decode_errors", st.DecodeErrors, "reason", why)
	return errors.Join(runErr, closeErr, flushErr, pipeErr)
}

// printRecords prints decoded records until the limit, a signal or idleness
// stops the consumer.
func (c *cli) printRecords(ctx context.Context, p *pipeline, out *lineWriter, mu *sync.Mutex, maxRecords int64) error {
	for rec, err := range p.consumer.Records(ctx) {
		if err != nil {
			return fmt.Errorf("consume %s: %w", p.spec.Stream, err)
		}
		p.lastSeen.Store(time.Now().UnixNano())
		mu.Lock()
		werr := out.write(rec.Record, rec.Value)
		mu.Unlock()
		if werr != nil {
			return werr
		}
		if n := p.count.Add(1); maxRecords > 0 && n >= maxRecords {
			break
		}
	}
	return nil
}
