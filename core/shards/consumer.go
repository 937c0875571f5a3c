package shards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// Record is one user record with its metadata and, with Records, the item
// the processor's serializer decoded from its data.
type Record struct {
	records.Record
	// Value is the decoded item (Records only; Run hands handlers the raw
	// records).
	Value any
}

// Stats are counters since New. Safe to call at any time.
type Stats struct {
	GetRecordsCalls  int64
	Throttles        int64
	BytesRead        int64 // data + partition keys of Kinesis records read
	KinesisRecords   int64 // Kinesis records read
	RecordsFetched   int64 // user records after deaggregation
	RecordsDelivered int64 // handed to the loop body or handler (retries count again)
	RecordsFinished  int64
	DecodeErrors     int64
	HandlerFailures  int64
	Checkpoints      int64 // checkpoint writes that succeeded
	LeasesTaken      int64
	LeasesLost       int64
	// Shards are the shards this consumer reads now.
	Shards []string
}

type counters struct {
	getRecords, throttles, bytesRead, kinesisRecords, fetched, delivered, finished,
	decodeErrors, handlerFailures, checkpoints, leasesTaken, leasesLost atomic.Int64
}

// Emitter sends the records a handler asks to emit (HandlerOutput.Emit).
type Emitter func(ctx context.Context, recs []records.UserRecord) error

// Emit sets where Run sends the records handlers emit. Without it, a
// handler that emits records fails its batch.
func Emit(f Emitter) Option {
	return func(c *config) error {
		if f == nil {
			return invalid("Emit is nil")
		}
		c.emitter = f
		return nil
	}
}

// Consumer reads a Kinesis stream: it leases shards through its store, runs
// one fetch loop per leased shard, and delivers records to Records or Run.
// Its methods are safe for concurrent use; Records and Run run one at a
// time.
type Consumer struct {
	client kinesisapi.Client
	stream string
	cfg    config
	store  checkpoint.Store
	proc   records.Processor
	log    *slog.Logger
	stats  counters

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	eng     *engine
}

// New returns a consumer of stream. It validates the options and starts
// nothing: reading starts with Records or Run.
func New(client kinesisapi.Client, stream string, opts ...Option) (*Consumer, error) {
	if client == nil {
		return nil, invalid("client is nil")
	}
	if stream == "" {
		return nil, invalid("stream name is empty")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	c := &Consumer{client: settledClient{client, cfg.shutdownTimeout}, stream: stream, cfg: cfg, closing: make(chan struct{})}
	c.store = cfg.store
	if c.store == nil {
		st, err := newDefaultStore(cfg.appName, stream)
		if err != nil {
			return nil, fmt.Errorf("%w: default store: %w", ErrInvalidOption, err)
		}
		c.store = st
	}
	if cfg.processor != nil {
		c.proc = *cfg.processor
	} else {
		c.proc = defaultProcessor()
	}
	c.log = cfg.logger
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.cfg.leaseInterval == 0 {
		c.cfg.leaseInterval = 10 * time.Second
		if t, ok := c.store.(checkpoint.Timing); ok && t.HeartbeatFrequency() > 0 {
			c.cfg.leaseInterval = t.HeartbeatFrequency()
		}
	}
	return c, nil
}

// Store returns the lease and checkpoint store the consumer uses.
func (c *Consumer) Store() checkpoint.Store { return c.store }

// Stats returns the counters.
func (c *Consumer) Stats() Stats {
	s := Stats{
		GetRecordsCalls:  c.stats.getRecords.Load(),
		Throttles:        c.stats.throttles.Load(),
		BytesRead:        c.stats.bytesRead.Load(),
		KinesisRecords:   c.stats.kinesisRecords.Load(),
		RecordsFetched:   c.stats.fetched.Load(),
		RecordsDelivered: c.stats.delivered.Load(),
		RecordsFinished:  c.stats.finished.Load(),
		DecodeErrors:     c.stats.decodeErrors.Load(),
		HandlerFailures:  c.stats.handlerFailures.Load(),
		Checkpoints:      c.stats.checkpoints.Load(),
		LeasesTaken:      c.stats.leasesTaken.Load(),
		LeasesLost:       c.stats.leasesLost.Load(),
	}
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng != nil {
		s.Shards = eng.heldShards()
	}
	return s
}

func (c *Consumer) report(err error) {
	c.log.Warn("shardwork consumer", "stream", c.stream, "err", err)
	if c.cfg.errorCallback != nil {
		c.cfg.errorCallback(err)
	}
}

// item is one record in the delivery queue.
type item struct {
	rec Record
	tr  *tracker
	e   *entry
}

// Records returns an iterator over the stream's records. A record counts as
// finished (and may be checkpointed) when the loop body returns for it,
// including by break. The iteration ends when ctx is done, Close is called,
// or the body breaks; then in-flight records finish, final checkpoints are
// written and leases released before the loop statement returns. A fatal
// error (missing stream, retry limit exceeded) is yielded once as the last
// element.
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		eng, err := c.start(ctx, true)
		if err != nil {
			yield(Record{}, err)
			return
		}
		var cur *item
		defer func() {
			if cur != nil {
				cur.tr.release()
			}
			eng.shutdown()
		}()
		for {
			// Stopping wins over queued records.
			select {
			case <-ctx.Done():
				return
			case <-c.closing:
				return
			default:
			}
			select {
			case <-ctx.Done():
				return
			case <-c.closing:
				return
			case err := <-eng.fatal:
				yield(Record{}, err)
				return
			case it := <-eng.queue:
				if !it.tr.deliver() {
					continue
				}
				cur = it
				c.stats.delivered.Add(1)
				ok := yield(it.rec, nil)
				cur = nil
				it.tr.finish(it.e)
				c.stats.finished.Add(1)
				if !ok {
					return
				}
			}
		}
	}
}

// Run delivers the stream's records to handler in batches of up to
// MaxBatchSize, until ctx is done (it returns ctx's error), Close is called
// (it returns nil) or a fatal error. Per-record results: StatusOK and
// StatusSkip finish the record; StatusFail reports it to the error callback
// and finishes it; StatusRetry delivers it again after a backoff (past the
// retry limit it fails). A handler error retries the whole batch; past the
// retry limit Run stops and returns it, leaving the batch unfinished (it
// will be read again).
func (c *Consumer) Run(ctx context.Context, handler records.Handler) error {
	if handler == nil {
		return invalid("handler is nil")
	}
	eng, err := c.start(ctx, false)
	if err != nil {
		return err
	}
	defer eng.shutdown()
	batch := make([]*item, 0, c.cfg.maxBatchSize)
	for {
		// Stopping wins over queued records.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return nil
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return nil
		case err := <-eng.fatal:
			return err
		case it := <-eng.queue:
			if it.tr.deliver() {
				batch = append(batch, it)
			}
		}
	fill:
		for len(batch) < c.cfg.maxBatchSize {
			select {
			case it := <-eng.queue:
				if it.tr.deliver() {
					batch = append(batch, it)
				}
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := c.handle(ctx, handler, batch); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil // closed during a retry backoff
			}
			return err
		}
		clear(batch)
		batch = batch[:0]
	}
}

// handle runs one batch to completion: every item is finished or released
// when it returns.
func (c *Consumer) handle(ctx context.Context, h records.Handler, items []*item) (err error) {
	recs := make([]records.Record, len(items))
	for i, it := range items {
		recs[i] = it.rec.Record
	}
	defer func() {
		if err != nil {
			for _, it := range items {
				it.tr.release()
			}
		}
	}()
	batchAttempt, retryAttempt := 0, 0
	for {
		c.stats.delivered.Add(int64(len(items)))
		out, herr := h.Handle(ctx, recs)
		if herr == nil && len(out.Results) != len(recs) {
			herr = fmt.Errorf("handler returned %d results for %d records", len(out.Results), len(recs))
		}
		if herr == nil && len(out.Emit) > 0 {
			if c.cfg.emitter == nil {
				herr = fmt.Errorf("handler emitted %d records but the consumer has no Emit option", len(out.Emit))
			} else if eerr := c.cfg.emitter(ctx, out.Emit); eerr != nil {
				herr = fmt.Errorf("emit %d records: %w", len(out.Emit), eerr)
			}
		}
		if herr != nil {
			batchAttempt++
			if ctx.Err() != nil {
				return ctx.Err()
			}
			herr = &ShardError{Stream: c.stream, Op: fmt.Sprintf("handle batch of %d records (attempt %d)", len(recs), batchAttempt), Err: herr}
			if c.cfg.retryLimit > 0 && batchAttempt >= c.cfg.retryLimit {
				return herr
			}
			c.report(herr)
			if werr := c.wait(ctx, c.backoff(batchAttempt)); werr != nil {
				return werr
			}
			continue
		}
		batchAttempt = 0
		retryAttempt++
		var keep []*item
		var keepRecs []records.Record
		for i, res := range out.Results {
			it := items[i]
			switch res.Status {
			case records.StatusOK, records.StatusSkip:
			case records.StatusRetry:
				if c.cfg.retryLimit == 0 || retryAttempt < c.cfg.retryLimit {
					keep = append(keep, it)
					keepRecs = append(keepRecs, recs[i])
					continue
				}
				c.failRecord(it, fmt.Errorf("%w: still retrying after %d attempts: %s", ErrHandlerFailed, retryAttempt, res.Message))
			case records.StatusFail:
				c.failRecord(it, fmt.Errorf("%w: %s", ErrHandlerFailed, res.Message))
			default:
				c.failRecord(it, fmt.Errorf("%w: unknown status %v", ErrHandlerFailed, res.Status))
			}
			it.tr.finish(it.e)
			c.stats.finished.Add(1)
		}
		items, recs = keep, keepRecs
		if len(items) == 0 {
			return nil
		}
		if werr := c.wait(ctx, c.backoff(retryAttempt)); werr != nil {
			return werr
		}
	}
}

func (c *Consumer) failRecord(it *item, err error) {
	c.stats.handlerFailures.Add(1)
	r := it.rec
	c.report(&RecordError{Stream: c.stream, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber, Err: err})
}

// wait sleeps d unless ctx ends or the consumer closes first.
func (c *Consumer) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// backoff is the capped, jittered exponential delay before attempt n (≥ 1).
func (c *Consumer) backoff(n int) time.Duration {
	d := c.cfg.backoffMin
	for i := 1; i < n && d < c.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.backoffMax)
	// Full jitter on the upper half keeps retries of many shards apart.
	return d/2 + rand.N(d/2+1)
}

// Close stops the consumer: the running Records or Run loop stops after
// its in-flight records finish, final checkpoints are written and leases
// released. It waits for that, or for ctx. Records and Run return
// ErrClosed afterwards. Do not call Close from inside a loop body or
// handler of the same consumer (cancel the loop's ctx instead).
func (c *Consumer) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.closing)
	}
	eng := c.eng
	c.mu.Unlock()
	if eng == nil {
		return nil
	}
	select {
	case <-eng.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close consumer of stream %s: %w", c.stream, ctx.Err())
	}
}

// start checks the stream and starts the engine.
func (c *Consumer) start(ctx context.Context, decode bool) (*engine, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.eng != nil {
		c.mu.Unlock()
		return nil, ErrRunning
	}
	eng := newEngine(c, ctx, decode)
	c.eng = eng
	c.mu.Unlock()
	if err := c.ensureStream(ctx); err != nil {
		c.mu.Lock()
		c.eng = nil
		c.mu.Unlock()
		close(eng.stopped)
		return nil, err
	}
	eng.startCoordinator()
	return eng, nil
}

func (c *Consumer) ensureStream(ctx context.Context) error {
	_, err := c.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.stream)})
	if err == nil {
		return nil
	}
	if !kinesisapi.IsNotFound(err) || !c.cfg.createStream {
		return fmt.Errorf("stream %s: %w", c.stream, err)
	}
	_, err = c.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(c.stream), ShardCount: aws.Int32(int32(c.cfg.createShards))})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream %s: %w", c.stream, err)
	}
	for {
		out, err := c.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.stream)})
		if err != nil {
			return fmt.Errorf("stream %s: %w", c.stream, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		if err := c.wait(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("stream %s not active: %w", c.stream, err)
		}
	}
}
