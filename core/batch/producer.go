package batch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// urec is one record accepted by Put.
type urec struct {
	seq  uint64
	item any
	ur   records.UserRecord
	hash kinesisapi.HashKey
	size int // data plus partition key
	enq  time.Time
}

// kentry is one Kinesis record (an aggregate of one or more urecs).
type kentry struct {
	shard    *shardQ
	hash     kinesisapi.HashKey
	pk, ehk  string
	data     []byte
	size     int
	recs     []*urec
	keys     []string // distinct user partition keys (orderPerKey only)
	attempts int
}

// shardQ is one predicted shard's queue, limiter and backoff state.
type shardQ struct {
	id      string
	lim     *limiter
	pending []*urec   // not yet aggregated, in Put order
	ready   []*kentry // aggregated, retries first, in Put order
	retries int       // consecutive calls with failures, for the backoff
	retryAt time.Time
}

type request struct {
	usage   map[*shardQ]*usage // what the call counts against each shard's limits
	entries []*kentry
	bytes   int
	users   int
}

type result struct {
	req *request
	out *kinesis.PutRecordsOutput
	err error
	dur time.Duration
}

type waiter struct {
	target uint64
	ch     chan struct{}
}

type counters struct {
	recordsPut, bytesPut             atomic.Int64
	recordsDelivered, bytesDelivered atomic.Int64
	kinesisRecords, requests         atomic.Int64
	throttled, retried, failed       atomic.Int64
	inFlight                         atomic.Int64
	latencyTotal, latencyMax         atomic.Int64
}

// Stats is a snapshot of a Producer's counters.
type Stats struct {
	// RecordsPut and BytesPut count what Put accepted (bytes: data plus
	// partition keys).
	RecordsPut, BytesPut int64
	// RecordsDelivered and BytesDelivered count user records Kinesis
	// accepted.
	RecordsDelivered, BytesDelivered int64
	// KinesisRecords counts Kinesis records (aggregates) accepted;
	// Requests the PutRecords calls made.
	KinesisRecords, Requests int64
	// Throttled counts entries Kinesis refused for throughput; Retried the
	// entries sent again; Failed the user records given up.
	Throttled, Retried, Failed int64
	// QueueDepth and QueueBytes are what Put accepted and is neither
	// delivered nor failed yet; InFlight the PutRecords calls running.
	QueueDepth, QueueBytes, InFlight int
	// MeanRequestLatency and MaxRequestLatency are over all PutRecords
	// calls.
	MeanRequestLatency, MaxRequestLatency time.Duration
}

// Producer batches records into PutRecords calls to one stream, within
// each shard's limits. Its methods are safe for concurrent use.
type Producer struct {
	client kinesisapi.Client
	stream string
	cfg    config
	stats  counters

	mu                  sync.Mutex
	started, closed     bool
	incoming            []*urec
	queued, queuedBytes int
	space               chan struct{} // closed (and replaced) when capacity frees up
	nextSeq             uint64        // seq of the next accepted record
	lowWater            uint64        // every seq below it is delivered or failed
	flushTo             uint64        // records below it are sent without waiting
	waiters             []waiter
	failures            []FailedRecord
	failCount           int

	// The run goroutine is started by Start, stopped by Close (stop, and
	// cancel when Close's context ends first), and joined on done.
	wake    chan struct{}
	results chan result
	stop    chan struct{}
	done    chan struct{}
	runCtx  context.Context
	cancel  context.CancelFunc

	// Owned by the run goroutine (and by Start before it runs).
	shardMap      *kinesisapi.ShardMap
	shards        map[string]*shardQ
	order         []*shardQ
	rr            int
	inFlight      int
	finished      map[uint64]bool
	low           uint64
	bufRecords    int
	bufBytes      int
	flushing      bool
	aborting      bool
	abortErr      error
	keysInFlight  map[string]struct{} // OrderPerKey: user keys in calls in flight
	refreshWanted bool
	nextRefresh   time.Time
	lastRefresh   time.Time
}

// New checks the options and returns a producer for stream. It does no I/O
// and starts nothing: call Start (or use Open).
func New(client kinesisapi.Client, stream string, opts ...Option) (*Producer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOption)
	}
	if stream == "" {
		return nil, fmt.Errorf("%w: empty stream name", ErrInvalidOption)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Producer{
		client:       client,
		stream:       stream,
		cfg:          cfg,
		space:        make(chan struct{}),
		wake:         make(chan struct{}, 1),
		results:      make(chan result, cfg.maxInFlight),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		finished:     map[uint64]bool{},
		keysInFlight: map[string]struct{}{},
		shards:       map[string]*shardQ{},
	}, nil
}

// Open is New followed by Start.
func Open(ctx context.Context, client kinesisapi.Client, stream string, opts ...Option) (*Producer, error) {
	p, err := New(client, stream, opts...)
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Stream is the stream's name.
func (p *Producer) Stream() string { return p.stream }

// Start checks that the stream exists (creating it when CreateStream is
// set), waits until it is ACTIVE, lists its shards and starts sending. A
// missing stream fails at once with ErrStreamNotFound.
func (p *Producer) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.started {
		p.mu.Unlock()
		return fmt.Errorf("producer for stream %s already started", p.stream)
	}
	p.mu.Unlock()

	if err := p.ensureStream(ctx); err != nil {
		return err
	}
	shards, err := p.listShards(ctx)
	if err != nil {
		return err
	}
	p.installShards(shards)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.started {
		return fmt.Errorf("producer for stream %s already started", p.stream)
	}
	p.started = true
	p.runCtx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.lastRefresh = time.Now()
	p.nextRefresh = p.lastRefresh.Add(p.cfg.refreshInterval)
	go p.run()
	return nil
}

func (p *Producer) ensureStream(ctx context.Context) error {
	created := false
	for {
		out, err := p.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.stream)})
		switch {
		case err != nil && kinesisapi.IsNotFound(err) && !created:
			if !p.cfg.createStream {
				return fmt.Errorf("%w: %s: %w", ErrStreamNotFound, p.stream, err)
			}
			_, err := p.client.CreateStream(ctx, &kinesis.CreateStreamInput{
				StreamName: aws.String(p.stream), ShardCount: aws.Int32(int32(p.cfg.createShards)),
			})
			var inUse *types.ResourceInUseException
			if err != nil && !errors.As(err, &inUse) {
				return fmt.Errorf("create stream %s: %w", p.stream, err)
			}
			p.cfg.logger.InfoContext(ctx, "created stream", "stream", p.stream, "shards", p.cfg.createShards)
			created = true
		case err != nil && kinesisapi.IsNotFound(err):
			// Just created; not yet visible.
		case err != nil:
			return fmt.Errorf("describe stream %s: %w", p.stream, err)
		default:
			switch st := out.StreamDescriptionSummary.StreamStatus; st {
			case types.StreamStatusActive, types.StreamStatusUpdating:
				return nil
			case types.StreamStatusDeleting:
				return fmt.Errorf("%w: %s is being deleted", ErrStreamNotFound, p.stream)
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stream %s not active: %w", p.stream, ctx.Err())
		case <-t.C:
		}
	}
}

func (p *Producer) listShards(ctx context.Context) ([]kinesisapi.Shard, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.requestTimeout)
	defer cancel()
	shards, err := kinesisapi.ListShards(ctx, p.client, p.stream)
	if err != nil {
		if kinesisapi.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %w", ErrStreamNotFound, err)
		}
		return nil, err
	}
	if kinesisapi.NewShardMap(shards).Len() == 0 {
		return nil, fmt.Errorf("stream %s has no open shard", p.stream)
	}
	return shards, nil
}

// installShards replaces the shard map and moves every queued record to
// the queue of its shard under the new map, keeping Put order per shard
// (and so per partition key). It runs only when no call is in flight.
func (p *Producer) installShards(shards []kinesisapi.Shard) {
	old := p.order
	p.shardMap = kinesisapi.NewShardMap(shards)
	p.shards = make(map[string]*shardQ, p.shardMap.Len())
	p.order = p.order[:0:0]
	for _, s := range p.shardMap.Shards() {
		q := &shardQ{id: s.ID}
		for _, o := range old {
			if o.id == s.ID {
				q.lim, q.retries, q.retryAt = o.lim, o.retries, o.retryAt
			}
		}
		if q.lim == nil {
			q.lim = newLimiter(p.cfg.putRateLimit, p.cfg.bandwidthLimit)
		}
		p.shards[s.ID] = q
		p.order = append(p.order, q)
	}
	p.bufRecords, p.bufBytes = 0, 0
	for _, o := range old {
		for _, e := range o.ready {
			q := p.queueFor(e.hash)
			e.shard = q
			q.ready = append(q.ready, e)
			p.bufRecords += len(e.recs)
			p.bufBytes += e.size
		}
	}
	for _, o := range old {
		for _, u := range o.pending {
			p.route(u)
		}
	}
}

// queueFor returns the queue of the shard holding h. A hash no open shard
// holds (a map caught mid-reshard) goes to a queue of its own and asks for
// a fresh map.
func (p *Producer) queueFor(h kinesisapi.HashKey) *shardQ {
	if s, ok := p.shardMap.Lookup(h); ok {
		return p.shards[s.ID]
	}
	p.refreshSoon()
	q := p.shards[""]
	if q == nil {
		q = &shardQ{lim: newLimiter(p.cfg.putRateLimit, p.cfg.bandwidthLimit)}
		p.shards[""] = q
		p.order = append(p.order, q)
	}
	return q
}

func (p *Producer) route(u *urec) {
	q := p.queueFor(u.hash)
	q.pending = append(q.pending, u)
	p.bufRecords++
	p.bufBytes += u.size
}

// Put serializes item, gives it the partition key from PartitionKeyFunc
// (or a random one) and queues it, blocking while the queue is full. It
// returns ErrInvalidRecord at once for an item that cannot be serialized or
// is too large, ctx's error if ctx ends first, and ErrClosed after Close.
func (p *Producer) Put(ctx context.Context, item any) error {
	return p.putItem(ctx, item, "", true)
}

// PutWithKey is Put with an explicit partition key.
func (p *Producer) PutWithKey(ctx context.Context, item any, partitionKey string) error {
	if partitionKey == "" {
		return fmt.Errorf("%w: empty partition key", ErrInvalidRecord)
	}
	return p.putItem(ctx, item, partitionKey, true)
}

// PutRecord queues already serialized data with its keys, blocking while
// the queue is full. An empty PartitionKey gets a random one.
func (p *Producer) PutRecord(ctx context.Context, r records.UserRecord) error {
	return p.enqueue(ctx, nil, r, true)
}

// TryPut is Put that returns ErrQueueFull instead of blocking.
func (p *Producer) TryPut(ctx context.Context, item any) error {
	return p.putItem(ctx, item, "", false)
}

// TryPutWithKey is PutWithKey that returns ErrQueueFull instead of
// blocking.
func (p *Producer) TryPutWithKey(ctx context.Context, item any, partitionKey string) error {
	if partitionKey == "" {
		return fmt.Errorf("%w: empty partition key", ErrInvalidRecord)
	}
	return p.putItem(ctx, item, partitionKey, false)
}

// TryPutRecord is PutRecord that returns ErrQueueFull instead of blocking.
func (p *Producer) TryPutRecord(ctx context.Context, r records.UserRecord) error {
	return p.enqueue(ctx, nil, r, false)
}

func (p *Producer) putItem(ctx context.Context, item any, pk string, block bool) error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	data, err := p.cfg.processor.Serializer.Serialize(ctx, []any{item})
	if err != nil {
		if items, _ := records.SplitErrors(err); items != nil {
			return fmt.Errorf("%w: serialize: %w", ErrInvalidRecord, items[0].Err)
		}
		return fmt.Errorf("serialize: %w", err)
	}
	if len(data) != 1 {
		return fmt.Errorf("serialize: serializer %q returned %d results for 1 item", p.cfg.processor.Name, len(data))
	}
	if pk == "" && p.cfg.partitionKeyFunc != nil {
		pk = p.cfg.partitionKeyFunc(item)
	}
	return p.enqueue(ctx, item, records.UserRecord{PartitionKey: pk, Data: data[0]}, block)
}

// PutBatch serializes items with one Serializer call (one call per batch
// also for a WebAssembly serializer) and queues them in order, with keys
// from PartitionKeyFunc or random ones, blocking while the queue is full.
// Items that cannot be serialized or are invalid, and items not queued
// because ctx ended or the producer closed, are reported in a
// records.ItemErrors (Index = position in items); the other items are
// queued. A nil error means every item was queued.
func (p *Producer) PutBatch(ctx context.Context, items []any) error {
	if err := p.checkOpen(); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	data, err := p.cfg.processor.Serializer.Serialize(ctx, items)
	bad, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		return fmt.Errorf("serialize: %w", batchErr)
	}
	if len(data) != len(items) {
		return fmt.Errorf("serialize: serializer %q returned %d results for %d items", p.cfg.processor.Name, len(data), len(items))
	}
	failed := make(map[int]error, len(bad))
	for _, ie := range bad {
		failed[ie.Index] = fmt.Errorf("%w: serialize: %w", ErrInvalidRecord, ie.Err)
	}
	var errs records.ItemErrors
	var stop error
	for i, item := range items {
		if err, ok := failed[i]; ok {
			errs = append(errs, records.ItemError{Index: i, Err: err})
			continue
		}
		if stop != nil {
			errs = append(errs, records.ItemError{Index: i, Err: stop})
			continue
		}
		pk := ""
		if p.cfg.partitionKeyFunc != nil {
			pk = p.cfg.partitionKeyFunc(item)
		}
		if err := p.enqueue(ctx, item, records.UserRecord{PartitionKey: pk, Data: data[i]}, true); err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				stop = err
			}
			errs = append(errs, records.ItemError{Index: i, Err: err})
		}
	}
	if errs != nil {
		return errs
	}
	return nil
}

func (p *Producer) checkOpen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !p.started {
		return ErrNotStarted
	}
	return nil
}

func randomKey() string { return strconv.FormatUint(rand.Uint64(), 16) }

func (p *Producer) enqueue(ctx context.Context, item any, r records.UserRecord, block bool) error {
	if r.PartitionKey == "" {
		r.PartitionKey = randomKey()
	}
	if n := utf8.RuneCountInString(r.PartitionKey); n > records.MaxPartitionKeyLen {
		return fmt.Errorf("%w: partition key of %d characters (the limit is %d)", ErrInvalidRecord, n, records.MaxPartitionKeyLen)
	}
	h, err := kinesisapi.RecordHashKey(r.PartitionKey, r.ExplicitHashKey)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if n := p.cfg.processor.Aggregator.SizeAlone(r); n > records.MaxRecordSize {
		return fmt.Errorf("%w: record with partition key %q is %d bytes as a Kinesis record (the limit is %d): %w",
			ErrInvalidRecord, r.PartitionKey, n, records.MaxRecordSize, records.ErrTooLarge)
	}
	u := &urec{item: item, ur: r, hash: h, size: len(r.Data) + len(r.PartitionKey)}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if !p.started {
			p.mu.Unlock()
			return ErrNotStarted
		}
		if p.queued == 0 || (p.queued < p.cfg.maxQueueSize && p.queuedBytes+u.size <= p.cfg.maxQueueBytes) {
			u.seq = p.nextSeq
			u.enq = time.Now()
			p.nextSeq++
			p.queued++
			p.queuedBytes += u.size
			p.incoming = append(p.incoming, u)
			p.mu.Unlock()
			p.stats.recordsPut.Add(1)
			p.stats.bytesPut.Add(int64(u.size))
			p.signal()
			return nil
		}
		if !block {
			p.mu.Unlock()
			return ErrQueueFull
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Producer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush sends everything put before the call without waiting for
// BufferTime and returns when each of those records is delivered or given
// up, or with ctx's error when ctx ends first. Records of those given up
// while Flush waited are returned in a *DeliveryError (they also go to the
// ErrorCallback and stay in Close's error).
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.started {
		p.mu.Unlock()
		return ErrNotStarted
	}
	from, target := len(p.failures), p.nextSeq
	ch := p.waitLocked()
	p.mu.Unlock()
	p.signal()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var failed []FailedRecord
	for _, f := range p.failures[from:] {
		if f.seq < target {
			failed = append(failed, f)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &DeliveryError{Stream: p.stream, Count: len(failed), Records: failed}
}

// waitLocked asks for everything accepted so far to be sent now and
// returns a channel closed when it is all finished.
func (p *Producer) waitLocked() chan struct{} {
	ch := make(chan struct{})
	target := p.nextSeq
	if p.lowWater >= target {
		close(ch)
		return ch
	}
	p.waiters = append(p.waiters, waiter{target, ch})
	p.flushTo = max(p.flushTo, target)
	return ch
}

// Close stops accepting records (Put returns ErrClosed), sends everything
// queued, waits for it and stops the producer. If records could not be
// delivered, by the retry limit or because ctx ended first (in-flight
// calls are then cancelled), it returns a *DeliveryError naming each.
// Closing twice returns ErrClosed.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.space)
	started := p.started
	var ch chan struct{}
	if started {
		ch = p.waitLocked()
	}
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.signal()
	select {
	case <-ch:
	case <-ctx.Done():
		p.cancel()
	}
	close(p.stop)
	<-p.done
	p.cancel()

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failCount == 0 {
		return nil
	}
	return &DeliveryError{Stream: p.stream, Count: p.failCount, Records: p.failures}
}

// Stats returns a snapshot of the counters.
func (p *Producer) Stats() Stats {
	s := &p.stats
	p.mu.Lock()
	depth, bytes := p.queued, p.queuedBytes
	p.mu.Unlock()
	req := s.requests.Load()
	out := Stats{
		RecordsPut: s.recordsPut.Load(), BytesPut: s.bytesPut.Load(),
		RecordsDelivered: s.recordsDelivered.Load(), BytesDelivered: s.bytesDelivered.Load(),
		KinesisRecords: s.kinesisRecords.Load(), Requests: req,
		Throttled: s.throttled.Load(), Retried: s.retried.Load(), Failed: s.failed.Load(),
		QueueDepth: depth, QueueBytes: bytes, InFlight: int(s.inFlight.Load()),
		MaxRequestLatency: time.Duration(s.latencyMax.Load()),
	}
	if req > 0 {
		out.MeanRequestLatency = time.Duration(s.latencyTotal.Load() / req)
	}
	return out
}
