package shards

import (
	"context"
	"errors"
	"fmt"
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

// runner owns one leased shard: it fetches, unpacks and queues the shard's
// records and writes its checkpoints. It runs in its own goroutine, started
// and joined by the coordinator.
type runner struct {
	e         *engine
	c         *Consumer
	shard     kinesisapi.Shard
	lease     checkpoint.Lease
	start     checkpoint.Checkpoint
	fromStart bool
	tr        *tracker

	ctx    context.Context // fetching; cancelled to stop the shard
	cancel context.CancelFunc

	stopping  atomic.Bool // set by the coordinator to give the shard up
	released  atomic.Bool // the runner is done with the lease: renew it no more
	renewedAt time.Time   // owned by the heartbeat goroutine

	mu   sync.Mutex
	lost error // why the lease was lost, if it was

	// Owned by the runner goroutine; read by the coordinator after done.
	ended bool // reached SHARD_END and checkpointed it as finished

	tick      *time.Ticker
	started   bool   // the Acquired event was sent
	resumeSeq string // skip sub-sequences ≤ resumeSub of this sequence
	resumeSub int64
	lastSeq   string // last Kinesis record fetched
}

// newRunner starts a shard at start: the lease's checkpoint, or further
// when this consumer itself finished more of the shard before losing it.
func newRunner(e *engine, s kinesisapi.Shard, l checkpoint.Lease, start checkpoint.Checkpoint, fromStart bool) *runner {
	ctx, cancel := context.WithCancel(e.ctx)
	r := &runner{
		e: e, c: e.c, shard: s, lease: l, start: start, fromStart: fromStart,
		tr:  newTracker(start),
		ctx: ctx, cancel: cancel, renewedAt: time.Now(),
	}
	if start != l.Checkpoint {
		r.tr.markDirty()
	}
	r.tr.onExpire = func() {
		r.lose(fmt.Errorf("%w: not renewed within the session timeout", checkpoint.ErrLeaseLost))
	}
	return r
}

// release stops the shard so its lease can be given to another worker.
// Called by the coordinator.
func (r *runner) release() {
	r.stopping.Store(true)
	r.cancel()
}

// lose stops the shard without further writes: the lease belongs to
// someone else.
func (r *runner) lose(err error) {
	r.mu.Lock()
	if r.lost == nil {
		r.lost = err
		r.c.stats.leasesLost.Add(1)
		r.c.report(&ShardError{Stream: r.c.stream, ShardID: r.shard.ID, Op: "lease", Err: err})
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *runner) lostErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

func (r *runner) event(acquired bool, err error) {
	if f := r.c.cfg.onLease; f != nil {
		f(LeaseEvent{Shard: r.shard.ID, Owner: r.lease.Owner, Counter: r.lease.Counter, Acquired: acquired, Err: err})
	}
}

func (r *runner) run() {
	defer func() { r.e.done <- r }()
	defer r.cancel()
	r.tick = time.NewTicker(r.c.cfg.checkpointEvery)
	defer r.tick.Stop()

	shardEnd := r.fetch()
	if !r.started {
		r.event(true, nil)
	}

	// Stop delivering: undelivered records are dropped (they stay
	// unfinished, so the checkpoint never passes them); wait for the ones
	// in flight.
	if shardEnd && r.lostErr() == nil {
		// Everything up to SHARD_END must finish before the shard counts
		// as finished.
		drained := r.tr.waitEmpty()
	wait:
		for {
			select {
			case <-drained:
				break wait
			case <-r.ctx.Done():
				break wait
			case <-r.tick.C:
				r.flush()
			}
		}
	}
	finalCtx, cancel := context.WithTimeout(r.e.final, r.c.cfg.shutdownTimeout)
	defer cancel()
	idle := r.tr.stop()
	select {
	case <-idle:
	case <-finalCtx.Done():
		r.c.report(&ShardError{Stream: r.c.stream, ShardID: r.shard.ID, Op: "stop", Err: fmt.Errorf("records still in flight after %v", r.c.cfg.shutdownTimeout)})
	}
	lost := r.lostErr()
	r.event(false, lost)
	if lost != nil {
		r.released.Store(true)
		return
	}
	cp, _ := r.tr.checkpoint(true)
	if shardEnd && r.tr.empty() {
		cp.Finished = true
	}
	if err := r.c.store.Checkpoint(finalCtx, r.lease, cp); err != nil {
		r.c.report(&ShardError{Stream: r.c.stream, ShardID: r.shard.ID, Op: "final checkpoint", Err: err})
		if errors.Is(err, checkpoint.ErrLeaseLost) {
			r.released.Store(true)
			return
		}
	} else {
		r.c.stats.checkpoints.Add(1)
		r.ended = cp.Finished
	}
	r.released.Store(true)
	if err := r.c.store.Release(finalCtx, r.lease); err != nil {
		r.c.report(&ShardError{Stream: r.c.stream, ShardID: r.shard.ID, Op: "release lease", Err: err})
	}
}

// flush writes the checkpoint if it advanced.
func (r *runner) flush() {
	cp, dirty := r.tr.checkpoint(true)
	if !dirty || r.lostErr() != nil {
		return
	}
	err := r.c.store.Checkpoint(r.ctx, r.lease, cp)
	switch {
	case err == nil:
		r.c.stats.checkpoints.Add(1)
	case errors.Is(err, checkpoint.ErrLeaseLost):
		r.lose(err)
	default:
		r.tr.markDirty()
		if r.ctx.Err() == nil {
			r.c.report(&ShardError{Stream: r.c.stream, ShardID: r.shard.ID, Op: "checkpoint", Err: err})
		}
	}
}

// sleep waits d, writing checkpoints meanwhile. It returns false when the
// shard is stopping.
func (r *runner) sleep(d time.Duration) bool {
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return false
		case <-r.tick.C:
			r.flush()
		case <-t.C:
			return true
		}
	}
}

// push queues a record, blocking while the queue is full.
func (r *runner) push(it *item) bool {
	for {
		select {
		case r.e.queue <- it:
			return true
		case <-r.ctx.Done():
			return false
		case <-r.tick.C:
			r.flush()
		}
	}
}

// fetch reads the shard until it is stopped or reaches SHARD_END (then it
// returns true).
func (r *runner) fetch() bool {
	c := r.c
	cp := r.start
	if cp.Finished {
		return true
	}
	it, ok := r.iterator(cp)
	if !ok {
		return false
	}
	// The shard is positioned: from here on its records may be delivered.
	r.started = true
	r.event(true, nil)
	attempt := 0
	next := time.Now()
	minGap := time.Duration(float64(time.Second) / c.cfg.fetchRate)
	for {
		if !r.sleep(time.Until(next)) {
			return false
		}
		c.stats.getRecords.Add(1)
		start := time.Now()
		out, err := c.client.GetRecords(r.ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(int32(c.cfg.recordLimit))})
		if err != nil {
			if r.ctx.Err() != nil {
				return false
			}
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				if it, ok = r.iterator(cp); !ok {
					return false
				}
				next = start.Add(minGap) // the failed call counts too
				continue
			}
			attempt++
			if kinesisapi.IsThrottle(err) {
				c.stats.throttles.Add(1)
			} else {
				serr := &ShardError{Stream: c.stream, ShardID: r.shard.ID, Op: "get records", Err: err}
				if c.cfg.retryLimit > 0 && attempt >= c.cfg.retryLimit {
					r.e.fail(serr)
					return false
				}
				c.report(serr)
			}
			next = start.Add(minGap)
			if t := time.Now().Add(c.backoff(attempt)); t.After(next) {
				next = t
			}
			continue
		}
		attempt = 0
		var bytes int
		for _, kr := range out.Records {
			bytes += len(kr.Data) + len(aws.ToString(kr.PartitionKey))
		}
		c.stats.bytesRead.Add(int64(bytes))
		c.stats.kinesisRecords.Add(int64(len(out.Records)))
		// Stay within the shard's call rate and read bandwidth.
		gap := max(minGap, time.Duration(float64(bytes)/float64(c.cfg.readBytesPerSec)*float64(time.Second)))
		next = start.Add(gap)
		if len(out.Records) > 0 {
			if !r.deliver(out.Records) {
				return false
			}
		}
		if out.NextShardIterator == nil {
			return true
		}
		it = out.NextShardIterator
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			next = time.Now().Add(max(c.cfg.sleepCaughtUp, gap))
		}
	}
}

// iterator gets a shard iterator: after the last fetched record if there
// is one, else from the checkpoint, else from the configured start.
func (r *runner) iterator(cp checkpoint.Checkpoint) (*string, bool) {
	c := r.c
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(c.stream), ShardId: aws.String(r.shard.ID)}
	switch {
	case r.lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(r.lastSeq)
	case cp.SequenceNumber != "" && cp.Complete:
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(cp.SequenceNumber)
	case cp.SequenceNumber != "":
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(cp.SequenceNumber)
		r.resumeSeq, r.resumeSub = cp.SequenceNumber, cp.SubSequenceNumber
	case r.fromStart || c.cfg.iteratorType == TrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case c.cfg.iteratorType == Latest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(c.cfg.timestamp)
	}
	for attempt := 1; ; attempt++ {
		out, err := c.client.GetShardIterator(r.ctx, in)
		if err == nil {
			return out.ShardIterator, true
		}
		if r.ctx.Err() != nil {
			return nil, false
		}
		serr := &ShardError{Stream: c.stream, ShardID: r.shard.ID, Op: "get shard iterator", Err: err}
		if kinesisapi.IsThrottle(err) {
			c.stats.throttles.Add(1)
		} else {
			if c.cfg.retryLimit > 0 && attempt >= c.cfg.retryLimit {
				r.e.fail(serr)
				return nil, false
			}
			c.report(serr)
		}
		if !r.sleep(c.backoff(attempt)) {
			return nil, false
		}
	}
}

// deliver unpacks one page of Kinesis records, tracks every user record in
// order and queues the ones to deliver. Records that fail to unpack or
// decode are reported and count as finished, so the shard moves on.
func (r *runner) deliver(page []types.Record) bool {
	c := r.c
	ctx := r.ctx
	in := make([]records.Record, len(page))
	for i, kr := range page {
		in[i] = records.Record{
			Data:           kr.Data,
			PartitionKey:   aws.ToString(kr.PartitionKey),
			ShardID:        r.shard.ID,
			SequenceNumber: aws.ToString(kr.SequenceNumber),
			ArrivalTime:    aws.ToTime(kr.ApproximateArrivalTimestamp),
		}
	}
	r.lastSeq = in[len(in)-1].SequenceNumber
	out, err := c.proc.Aggregator.Deaggregate(ctx, in)
	failed := map[int]error{}
	if err != nil {
		items, batch := records.SplitErrors(err)
		if batch != nil {
			if ctx.Err() != nil {
				return false
			}
			for i := range in {
				failed[i] = batch
			}
		}
		for _, ie := range items {
			failed[ie.Index] = ie.Err
		}
		if batch != nil {
			out = nil
		}
	}
	// Entries and items of a page come from one allocation each; the
	// page's memory is freed once all of them are finished.
	slab := make([]entry, 0, len(out)+len(in))
	items := make([]item, 0, len(out))
	newEntry := func(e entry) *entry {
		slab = append(slab, e)
		return &slab[len(slab)-1]
	}
	entries := make([]*entry, 0, len(out)+len(in))
	queued := make([]*item, 0, len(out))
	j := 0
	for i, kr := range in {
		if ferr, bad := failed[i]; bad {
			r.decodeFailed(kr, ferr)
			entries = append(entries, newEntry(entry{seq: kr.SequenceNumber, last: true, done: true}))
			continue
		}
		first := len(entries)
		for j < len(out) && out[j].SequenceNumber == kr.SequenceNumber {
			ur := out[j]
			j++
			if r.resumeSeq != "" && ur.SequenceNumber == r.resumeSeq && ur.SubSequenceNumber <= r.resumeSub {
				continue
			}
			e := newEntry(entry{seq: ur.SequenceNumber, sub: ur.SubSequenceNumber})
			entries = append(entries, e)
			items = append(items, item{rec: Record{Record: ur}, e: e, tr: r.tr})
			queued = append(queued, &items[len(items)-1])
		}
		if len(entries) == first {
			// Nothing to deliver from this Kinesis record (empty aggregate,
			// or every part finished before a restart).
			var sub int64
			if kr.SequenceNumber == r.resumeSeq {
				sub = r.resumeSub
			}
			entries = append(entries, newEntry(entry{seq: kr.SequenceNumber, sub: sub, last: true, done: true}))
			continue
		}
		entries[len(entries)-1].last = true
	}
	r.resumeSeq = ""
	if j != len(out) {
		// The aggregator returned records that match no input in order:
		// a processor bug. Report and treat the page as delivered below.
		c.report(&ShardError{Stream: c.stream, ShardID: r.shard.ID, Op: "deaggregate", Err: fmt.Errorf("%d unpacked records do not follow their inputs' order", len(out)-j)})
	}
	if r.e.decode && len(queued) > 0 {
		data := make([][]byte, len(queued))
		for i, it := range queued {
			data[i] = it.rec.Data
		}
		vals, err := c.proc.Serializer.Deserialize(ctx, data)
		bad := map[int]error{}
		if err != nil {
			items, batch := records.SplitErrors(err)
			if batch != nil {
				if ctx.Err() != nil {
					return false
				}
				for i := range queued {
					bad[i] = batch
				}
			}
			for _, ie := range items {
				bad[ie.Index] = ie.Err
			}
		}
		keep := queued[:0]
		for i, it := range queued {
			if derr, ok := bad[i]; ok {
				r.decodeFailed(it.rec.Record, derr)
				it.e.done = true
				continue
			}
			if i < len(vals) {
				it.rec.Value = vals[i]
			}
			keep = append(keep, it)
		}
		queued = keep
	}
	c.stats.fetched.Add(int64(len(queued)))
	for _, e := range entries {
		r.tr.add(e)
	}
	for _, it := range queued {
		if !r.push(it) {
			return false
		}
	}
	return true
}

func (r *runner) decodeFailed(rec records.Record, err error) {
	r.c.stats.decodeErrors.Add(1)
	r.c.report(&RecordError{Stream: r.c.stream, ShardID: rec.ShardID, SequenceNumber: rec.SequenceNumber, SubSequenceNumber: rec.SubSequenceNumber, Err: fmt.Errorf("%w: %w", ErrDecode, err)})
}
