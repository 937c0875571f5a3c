package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
)

// pipelineSpec is one pipeline: input stream → processor → handler plugin →
// optional output stream. consume builds one from its flags; run reads a
// list from the config file's "pipelines".
type pipelineSpec struct {
	Name            string         `yaml:"name"`
	Stream          string         `yaml:"stream"`
	App             string         `yaml:"app"`
	Processor       string         `yaml:"processor"`
	Handler         string         `yaml:"handler"`
	HandlerConfig   map[string]any `yaml:"handler_config"`
	OutputStream    string         `yaml:"output_stream"`
	OutputProcessor string         `yaml:"output_processor"`
	Checkpointer    string         `yaml:"checkpointer"`
	IteratorType    string         `yaml:"iterator_type"`
	AtTimestamp     string         `yaml:"at_timestamp"`
	MaxBatchSize    int            `yaml:"max_batch_size"`

	// where names the spec in messages: "pipelines[0]" or "" for flags.
	where string
	// from tells where each field came from, for messages (flags and env).
	from func(key string) string
}

var pipelineKeys = []string{"name", "stream", "app", "processor", "handler", "handler_config", "output_stream",
	"output_processor", "checkpointer", "iterator_type", "at_timestamp", "max_batch_size"}

// key names one of the spec's fields in messages.
func (s *pipelineSpec) key(k string) string {
	if s.where == "" {
		return k
	}
	return s.where + "." + k
}

func (s *pipelineSpec) fromOf(k string) string {
	if s.from != nil {
		return s.from(k)
	}
	return ""
}

// pipeline is a running pipeline. Its consumer's Run owns the handler
// calls; Close stops it.
type pipeline struct {
	spec     pipelineSpec
	log      *slog.Logger
	consumer *shards.Consumer
	store    checkpoint.Store
	proc     records.Processor
	outProc  records.Processor // the output stream's processor
	handler  records.Handler   // nil: forward records unchanged
	out      *batch.Producer   // nil: no output stream
	emitLine *lineWriter       // with a handler and no output: print emitted records
	emitMu   sync.Mutex
	closers  []closer
	metrics  *pipelineMetrics // nil outside run

	outFailed atomic.Int64 // output records the producer gave up
	max       int64        // stop after this many records (0: never)
	count     atomic.Int64
	limitHit  chan struct{}
	limitOnce sync.Once
	lastSeen  atomic.Int64 // unix nanos of the last delivered batch
}

// checkpointStore builds the lease and checkpoint store a spec asks for,
// pinging Redis first so an unreachable one is a clear startup error.
func (c *cli) checkpointStore(ctx context.Context, cfg *config, s *pipelineSpec, log *slog.Logger) (checkpoint.Store, closer, error) {
	var opts []checkpoint.Option
	if cfg.isSet("session_timeout") {
		opts = append(opts, checkpoint.WithSessionTimeout(cfg.dur("session_timeout")))
	}
	if cfg.isSet("heartbeat_frequency") {
		opts = append(opts, checkpoint.WithHeartbeatFrequency(cfg.dur("heartbeat_frequency")))
	}
	kind := s.Checkpointer
	switch {
	case kind == "" || kind == "memory":
		st, err := checkpoint.NewMemory(s.App, s.Stream, opts...)
		if err != nil {
			return nil, nil, &usageError{fmt.Errorf("invalid config: %w", err)}
		}
		return st, noClose, nil
	case kind == "redis" || strings.HasPrefix(kind, "redis://") || strings.HasPrefix(kind, "rediss://"):
		raw, from, key := kind, s.fromOf("checkpointer"), s.key("checkpointer")
		if kind == "redis" {
			raw, from, key = cfg.str("redis_url"), cfg.from("redis_url"), "redis_url"
		}
		ropts, err := redis.ParseURL(raw)
		if err != nil {
			return nil, nil, badValue(key, raw, from, "not a Redis URL: "+err.Error())
		}
		rc := redis.NewClient(ropts)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = rc.Ping(pctx).Err()
		cancel()
		if err != nil {
			rc.Close()
			return nil, nil, usagef("redis at %s (%s = %s) is unreachable: %v", ropts.Addr, key, redactURL(raw), err)
		}
		st, err := newRedisStore(rc, s.App, s.Stream, cfg)
		if err != nil {
			rc.Close()
			return nil, nil, &usageError{fmt.Errorf("invalid config: %w", err)}
		}
		return st, func(context.Context) error { return rc.Close() }, nil
	}
	return nil, nil, badValue(s.key("checkpointer"), kind, s.fromOf("checkpointer"), "want memory, redis or a redis:// URL")
}

// redactURL hides a password in a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// consumerOpts are the consumer options a spec and the shared settings ask
// for.
func consumerOpts(cfg *config, s *pipelineSpec, proc records.Processor, store checkpoint.Store, log *slog.Logger) ([]shards.Option, error) {
	opts := []shards.Option{
		shards.Processor(proc), shards.Checkpointer(store), shards.AppName(s.App),
		shards.Logger(log), shards.ErrorCallback(func(err error) { log.Warn("consumer", "pipeline", s.Name, "err", err) }),
	}
	it := s.IteratorType
	var ts time.Time
	if s.AtTimestamp != "" {
		t, err := parseTime(s.AtTimestamp)
		if err != nil {
			return nil, badValue(s.key("at_timestamp"), s.AtTimestamp, s.fromOf("at_timestamp"), "not a time (RFC 3339 or Unix seconds)")
		}
		ts, it = t, "AT_TIMESTAMP"
	}
	switch it {
	case "", "TRIM_HORIZON":
		opts = append(opts, shards.StartAt(shards.TrimHorizon, time.Time{}))
	case "LATEST":
		opts = append(opts, shards.StartAt(shards.Latest, time.Time{}))
	case "AT_TIMESTAMP":
		if ts.IsZero() {
			return nil, badValue(s.key("iterator_type"), it, s.fromOf("iterator_type"), "AT_TIMESTAMP needs at_timestamp")
		}
		opts = append(opts, shards.StartAt(shards.AtTimestamp, ts))
	default:
		return nil, badValue(s.key("iterator_type"), it, s.fromOf("iterator_type"), "must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP")
	}
	if s.MaxBatchSize > 0 {
		opts = append(opts, shards.MaxBatchSize(s.MaxBatchSize))
	}
	if cfg.isSet("heartbeat_frequency") {
		opts = append(opts, shards.LeaseInterval(cfg.dur("heartbeat_frequency")))
	}
	if cfg.isSet("sleep_when_caught_up") {
		opts = append(opts, shards.SleepWhenCaughtUp(cfg.dur("sleep_when_caught_up")))
	}
	if cfg.isSet("shard_fetch_rate") {
		opts = append(opts, shards.ShardFetchRate(float64(cfg.int("shard_fetch_rate"))))
	}
	if cfg.isSet("record_limit") {
		opts = append(opts, shards.RecordLimit(cfg.int("record_limit")))
	}
	if cfg.isSet("shutdown_timeout") {
		opts = append(opts, shards.ShutdownTimeout(cfg.dur("shutdown_timeout")))
	}
	return opts, nil
}

// buildPipeline resolves a spec into a pipeline ready to run: processors,
// handler plugin, store, consumer and output producer. Every config and
// plugin problem is reported here, before anything is read.
func (c *cli) buildPipeline(ctx context.Context, cfg *config, cl *kinesis.Client, s pipelineSpec, log *slog.Logger, m *metrics) (_ *pipeline, err error) {
	p := &pipeline{spec: s, log: log.With("pipeline", s.Name), limitHit: make(chan struct{})}
	if m != nil {
		p.metrics = m.pipeline(s.Name)
	}
	defer func() {
		if err != nil {
			p.close(context.WithoutCancel(ctx))
		}
	}()
	if s.Stream == "" {
		return nil, usagef("%sno stream given", prefix(s.where))
	}
	if s.App == "" {
		return nil, usagef("%sno app given", prefix(s.where))
	}
	if s.Processor == "" {
		s.Processor = "json"
	}
	proc, cl1, err := c.processorByName(ctx, cfg, s.key("processor"), s.Processor, s.fromOf("processor"), p.log)
	if err != nil {
		return nil, err
	}
	p.proc = proc
	p.closers = append(p.closers, cl1)
	if s.Handler != "" {
		hcfg, err := handlerConfig(&s)
		if err != nil {
			return nil, err
		}
		h, cl2, err := c.loadHandler(ctx, cfg, s.key("handler"), s.Handler, s.fromOf("handler"), hcfg, p.log)
		if err != nil {
			return nil, err
		}
		p.handler = h
		p.closers = append(p.closers, cl2)
	}
	store, cl3, err := c.checkpointStore(ctx, cfg, &s, p.log)
	if err != nil {
		return nil, err
	}
	p.store = store
	p.closers = append(p.closers, cl3)

	var out *batch.Producer
	if s.OutputStream != "" {
		oname := s.OutputProcessor
		ofrom := s.fromOf("output_processor")
		if oname == "" {
			oname, ofrom = s.Processor, s.fromOf("processor")
		}
		oproc, cl4, err := c.processorByName(ctx, cfg, s.key("output_processor"), oname, ofrom, p.log)
		if err != nil {
			return nil, err
		}
		p.outProc = oproc
		p.closers = append(p.closers, cl4)
		popts := producerOpts(cfg, oproc, p.log)
		popts = append(popts, batch.ErrorCallback(func(f batch.FailedRecord) {
			p.outFailed.Add(1)
			p.log.Error("output record not delivered", "stream", s.OutputStream, "err", f.Error())
		}))
		if out, err = batch.New(cl, s.OutputStream, popts...); err != nil {
			return nil, &usageError{fmt.Errorf("invalid config: %s%w", prefix(s.where), err)}
		}
	}
	opts, err := consumerOpts(cfg, &s, proc, store, p.log)
	if err != nil {
		return nil, err
	}
	if out != nil || p.handler != nil {
		opts = append(opts, shards.Emit(p.emit))
	}
	opts = append(opts, shards.OnLease(p.onLease))
	var kc kinesisapi.Client = cl
	if p.metrics != nil {
		kc = newLagClient(cl, p.metrics)
	}
	cons, err := shards.New(kc, s.Stream, opts...)
	if err != nil {
		return nil, &usageError{fmt.Errorf("invalid config: %s%w", prefix(s.where), err)}
	}

	// The configuration is valid; now the streams must exist.
	if _, err := cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.Stream)}); err != nil {
		if kinesisapi.IsNotFound(err) {
			return nil, fmt.Errorf("%sstream %s not found", prefix(s.where), s.Stream)
		}
		return nil, fmt.Errorf("%sdescribe stream %s: %w", prefix(s.where), s.Stream, err)
	}
	if out != nil {
		if err := out.Start(ctx); err != nil {
			if errors.Is(err, batch.ErrStreamNotFound) {
				return nil, fmt.Errorf("%soutput stream %s not found", prefix(s.where), s.OutputStream)
			}
			return nil, fmt.Errorf("output stream %s: %w", s.OutputStream, err)
		}
		p.out = out
	}
	p.consumer = cons
	return p, nil
}

// handlerConfig is the handler plugin's configuration as JSON (nil for
// none).
func handlerConfig(s *pipelineSpec) ([]byte, error) {
	if len(s.HandlerConfig) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(s.HandlerConfig)
	if err != nil {
		return nil, badValue(s.key("handler_config"), fmt.Sprint(s.HandlerConfig), "", "not representable as JSON: "+err.Error())
	}
	return b, nil
}

// errLimitReached fails batches delivered after the record limit.
var errLimitReached = errors.New("record limit reached")

// prefix names a config file's pipeline at the start of a message ("" for
// the one consume builds from flags).
func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// Handle is what the consumer calls for each batch: the handler plugin (or
// a pass-through that forwards every record), within the record limit.
// Records past the limit are left unfinished (StatusRetry) for the next run.
func (p *pipeline) Handle(ctx context.Context, recs []records.Record) (records.HandlerOutput, error) {
	p.lastSeen.Store(time.Now().UnixNano())
	n := len(recs)
	limit := false
	if p.max > 0 {
		remaining := p.max - p.count.Load()
		if remaining <= 0 {
			// Past the limit while the consumer closes: a batch error leaves
			// these records unfinished (never checkpointed), whatever the
			// retry policy would do with per-record verdicts.
			return records.HandlerOutput{}, errLimitReached
		}
		if remaining <= int64(n) {
			n, limit = int(max(remaining, 0)), true
		}
	}
	var out records.HandlerOutput
	if p.handler != nil && n > 0 {
		in, undecodable, err := p.asJSON(ctx, recs[:n])
		if err != nil {
			return out, err
		}
		start := time.Now()
		o, err := p.handler.Handle(ctx, in)
		p.metrics.observeCall(time.Since(start), err)
		if err != nil {
			return o, err
		}
		if len(o.Results) != n {
			return o, fmt.Errorf("handler returned %d results for %d records", len(o.Results), n)
		}
		for i, msg := range undecodable {
			o.Results[i] = records.Result{Status: records.StatusFail, Message: msg}
		}
		out = o
	} else {
		out.Results = make([]records.Result, n, len(recs))
		if p.out != nil {
			emit, failed, err := p.forward(ctx, recs[:n])
			if err != nil {
				return out, err
			}
			for i, msg := range failed {
				out.Results[i] = records.Result{Status: records.StatusFail, Message: msg}
			}
			out.Emit = emit
		}
	}
	p.metrics.observeBatch(recs[:n], out.Results)
	for range len(recs) - n {
		out.Results = append(out.Results, records.Result{Status: records.StatusRetry, Message: "record limit reached"})
	}
	p.count.Add(int64(n))
	if limit {
		p.limitOnce.Do(func() { close(p.limitHit) })
	}
	return out, nil
}

// onLease counts lease events; taking a shard also restarts the idle clock
// (--idle-exit measures time without records while reading, not start-up).
func (p *pipeline) onLease(ev shards.LeaseEvent) {
	if ev.Acquired {
		p.lastSeen.Store(time.Now().UnixNano())
	}
	p.metrics.onLease(ev)
}

// emit sends a batch's emitted records to the output stream and waits until
// they are delivered, so the batch is checkpointed only after its outputs
// are safe; without an output stream it prints them.
func (p *pipeline) emit(ctx context.Context, recs []records.UserRecord) error {
	if p.out == nil {
		p.emitMu.Lock()
		defer p.emitMu.Unlock()
		if p.emitLine == nil {
			return fmt.Errorf("handler emitted %d records but the pipeline has no output_stream", len(recs))
		}
		for _, r := range recs {
			if err := p.emitLine.write(records.Record{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey}, r.Data); err != nil {
				return err
			}
		}
		return p.emitLine.Flush()
	}
	recs, err := p.fromJSON(ctx, recs)
	if err != nil {
		return err
	}
	before := p.outFailed.Load()
	for _, r := range recs {
		if err := p.out.PutRecord(ctx, r); err != nil {
			return fmt.Errorf("output stream %s: %w", p.spec.OutputStream, err)
		}
	}
	if err := p.out.Flush(ctx); err != nil {
		return fmt.Errorf("output stream %s: flush: %w", p.spec.OutputStream, err)
	}
	if n := p.outFailed.Load() - before; n > 0 {
		return fmt.Errorf("output stream %s: %d records not delivered", p.spec.OutputStream, n)
	}
	return nil
}

// close releases everything the pipeline holds except the consumer (closed
// by its runner): the output producer (flushing it) and the plugins.
func (p *pipeline) close(ctx context.Context) error {
	var errs []error
	// The consumer is closed: leave the live set so the remaining workers'
	// fair share grows at once instead of after the session timeout.
	if l, ok := p.store.(checkpoint.Leaver); ok && p.consumer != nil {
		if err := l.Leave(ctx); err != nil {
			errs = append(errs, fmt.Errorf("leave: %w", err))
		}
	}
	if p.out != nil {
		if err := p.out.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("output stream %s: %w", p.spec.OutputStream, err))
		}
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		if p.closers[i] != nil {
			if err := p.closers[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// textual reports whether a serializer's record data is already what a
// handler plugin reads (JSON, or text for the string processors), so no
// transcoding is needed.
func textual(s records.Serializer) bool {
	switch s.(type) {
	case records.JSONSerializer, *records.JSONSerializer, records.StringSerializer, *records.StringSerializer:
		return true
	}
	return false
}

// asJSON gives the handler records whose data is JSON: records of a
// binary format (msgpack, a plugin serializer) are decoded with the
// pipeline's processor and re-encoded as JSON. Records that cannot be
// decoded are left out of nothing: they keep their data and are failed with
// the returned message (by index).
func (p *pipeline) asJSON(ctx context.Context, recs []records.Record) ([]records.Record, map[int]string, error) {
	if textual(p.proc.Serializer) {
		return recs, nil, nil
	}
	datas := make([][]byte, len(recs))
	for i, r := range recs {
		datas[i] = r.Data
	}
	items, err := p.proc.Serializer.Deserialize(ctx, datas)
	ie, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		return nil, nil, fmt.Errorf("decode for the handler: %w", batchErr)
	}
	bad := map[int]string{}
	for _, e := range ie {
		bad[e.Index] = "cannot decode: " + e.Err.Error()
	}
	out := make([]records.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		if _, failed := bad[i]; failed {
			continue
		}
		b, err := json.Marshal(items[i])
		if err != nil {
			bad[i] = "cannot encode as JSON: " + err.Error()
			continue
		}
		out[i].Data = b
	}
	return out, bad, nil
}

// forward copies records to the output stream: unchanged when both streams
// use the same serializer, else decoded and re-encoded.
func (p *pipeline) forward(ctx context.Context, recs []records.Record) ([]records.UserRecord, map[int]string, error) {
	emit := make([]records.UserRecord, 0, len(recs))
	if reflect.TypeOf(p.proc.Serializer) == reflect.TypeOf(p.outProc.Serializer) {
		for _, r := range recs {
			emit = append(emit, records.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data})
		}
		return emit, nil, nil
	}
	datas := make([][]byte, len(recs))
	for i, r := range recs {
		datas[i] = r.Data
	}
	bad := map[int]string{}
	items, err := p.proc.Serializer.Deserialize(ctx, datas)
	ie, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		return nil, nil, fmt.Errorf("decode: %w", batchErr)
	}
	for _, e := range ie {
		bad[e.Index] = "cannot decode: " + e.Err.Error()
	}
	idx := make([]int, 0, len(recs))
	keep := make([]any, 0, len(recs))
	for i := range recs {
		if _, failed := bad[i]; !failed {
			idx, keep = append(idx, i), append(keep, items[i])
		}
	}
	enc, err := p.outProc.Serializer.Serialize(ctx, keep)
	ie, batchErr = records.SplitErrors(err)
	if batchErr != nil {
		return nil, nil, fmt.Errorf("encode for %s: %w", p.spec.OutputStream, batchErr)
	}
	failedEnc := map[int]bool{}
	for _, e := range ie {
		failedEnc[e.Index] = true
		bad[idx[e.Index]] = "cannot encode for the output stream: " + e.Err.Error()
	}
	for j, i := range idx {
		if !failedEnc[j] {
			emit = append(emit, records.UserRecord{PartitionKey: recs[i].PartitionKey, ExplicitHashKey: recs[i].ExplicitHashKey, Data: enc[j]})
		}
	}
	return emit, bad, nil
}

// fromJSON turns a handler's emitted records (JSON, as handlers write them)
// into the output stream's format when that is not JSON.
func (p *pipeline) fromJSON(ctx context.Context, recs []records.UserRecord) ([]records.UserRecord, error) {
	if p.handler == nil || textual(p.outProc.Serializer) {
		return recs, nil
	}
	items := make([]any, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Data, &items[i]); err != nil {
			return nil, fmt.Errorf("emitted record %d is not JSON (output processor %s needs an item): %w", i, p.outProc.Name, err)
		}
	}
	enc, err := p.outProc.Serializer.Serialize(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("encode emitted records for %s: %w", p.spec.OutputStream, err)
	}
	out := make([]records.UserRecord, len(recs))
	for i, r := range recs {
		out[i] = records.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: enc[i]}
	}
	return out, nil
}
