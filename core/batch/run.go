package batch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// run is the producer's one goroutine that owns the shard queues: it routes
// accepted records, aggregates them per shard, builds PutRecords calls
// within each shard's limits, and handles their results.
func (p *Producer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stop := p.stop
	stopping := false
	for {
		p.drain()
		if stopping && !p.aborting && p.runCtx.Err() != nil {
			p.aborting = true
			p.abortErr = fmt.Errorf("%w before delivery: %w", ErrClosed, context.Cause(p.runCtx))
		}
		if p.aborting && p.inFlight == 0 {
			p.failQueued()
			return
		}
		if stopping && !p.aborting && p.inFlight == 0 && p.bufRecords == 0 {
			return
		}
		now := time.Now()
		next := p.dispatch(now)
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(max(next.Sub(now), time.Millisecond))
			tc = timer.C
		}
		select {
		case <-p.wake:
		case r := <-p.results:
			p.handle(r)
		case <-tc:
		case <-stop:
			stop = nil
			stopping = true
		}
	}
}

// drain moves the records Put accepted into their shard queues.
func (p *Producer) drain() {
	p.mu.Lock()
	in := p.incoming
	p.incoming = nil
	p.flushing = p.low < p.flushTo
	p.mu.Unlock()
	for _, u := range in {
		p.route(u)
	}
}

// minRefreshGap spaces out the shard listings a reshard (or an aggregator
// whose keys route elsewhere) asks for.
const minRefreshGap = time.Second

// refreshSoon asks for a shard listing at most minRefreshGap after the last.
func (p *Producer) refreshSoon() {
	if t := p.lastRefresh.Add(minRefreshGap); t.Before(p.nextRefresh) {
		p.nextRefresh = t
	}
}

func (p *Producer) refresh() {
	p.refreshWanted = false
	p.lastRefresh = time.Now()
	p.nextRefresh = p.lastRefresh.Add(p.cfg.refreshInterval)
	shards, err := p.listShards(p.runCtx)
	if err != nil {
		p.cfg.logger.Warn("shard map refresh failed; keeping the old map", "stream", p.stream, "err", err)
		return
	}
	p.installShards(shards)
	p.cfg.logger.Debug("shard map refreshed", "stream", p.stream, "shards", p.shardMap.Len())
}

// dispatch starts the calls that may go now and returns when it next has
// something to do without being woken (zero: nothing).
func (p *Producer) dispatch(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if p.aborting {
		return next
	}
	if !now.Before(p.nextRefresh) {
		p.refreshWanted = true
	}
	if p.refreshWanted {
		if p.inFlight > 0 {
			// Records move between queues only with no call in flight;
			// the calls' results wake the loop.
			return next
		}
		p.refresh()
	}
	consider(p.nextRefresh)
	due := dueState{flush: p.flushing || p.bufBytes >= MaxBatchBytes}
	for {
		req := p.build(now, due, consider)
		if req == nil {
			break
		}
		p.launch(req)
	}
	return next
}

// build collects one call's entries from the shards that may send now:
// not in backoff, with fewer than MaxInFlight calls in flight, and within
// their limiters. With OrderPerKey a shard's entries are taken in order up
// to the first that holds a partition key already in flight (in this call
// or another), so at most one Kinesis record per key is ever in flight.
func (p *Producer) build(now time.Time, due dueState, consider func(time.Time)) *request {
	req := &request{usage: map[*shardQ]*usage{}}
	n := len(p.order)
	full := false
	for i := 0; i < n && !full; i++ {
		q := p.order[(p.rr+i)%n]
		if len(q.pending) == 0 && len(q.ready) == 0 {
			continue
		}
		if now.Before(q.retryAt) {
			consider(q.retryAt)
			continue
		}
		if q.inFlight >= p.cfg.maxInFlight {
			// A result wakes the loop.
			continue
		}
		if len(q.ready) == 0 {
			// A shard that is not due yet joins a call that has room
			// when it has no call in flight.
			if !p.shardDue(q, now, due) && (len(req.entries) == 0 || q.inFlight > 0) {
				consider(q.pending[0].enq.Add(p.cfg.bufferTime))
				continue
			}
			if r, b := q.lim.budget(now); r < 1 || b < 1 {
				if at, ok := q.lim.readyAt(now, q.pending[0].size); ok {
					consider(at)
				}
				continue
			}
			p.aggregate(q)
			if len(q.ready) == 0 {
				continue
			}
		}
		takenR, takenB := 0, 0
		for {
			if len(q.ready) == 0 {
				// Records that came in since the last aggregation join
				// the call while it and the shard's limits have room.
				if len(q.pending) == 0 || len(req.entries) >= p.cfg.batchSize ||
					!q.lim.fits(takenR, takenB, q.pending[0].size) {
					break
				}
				p.aggregate(q)
				continue
			}
			e := q.ready[0]
			if len(req.entries) >= p.cfg.batchSize || req.bytes+e.size > MaxBatchBytes {
				full = true
				break
			}
			if !q.lim.fits(takenR, takenB, e.size) {
				break
			}
			if p.cfg.orderPerKey && !p.claimKeys(e.keys) {
				// An earlier record of one of these keys is in flight.
				break
			}
			q.ready = q.ready[1:]
			req.entries = append(req.entries, e)
			req.bytes += e.size
			req.users += len(e.recs)
			takenR++
			takenB += e.size
			p.bufRecords -= len(e.recs)
			p.bufBytes -= e.size
		}
		if takenR > 0 {
			req.usage[q] = q.lim.take(now, takenR, takenB)
		} else if len(q.ready) > 0 && !full {
			if at, ok := q.lim.readyAt(now, q.ready[0].size); ok {
				consider(at)
			}
		}
	}
	if n > 0 {
		p.rr = (p.rr + 1) % n
	}
	if len(req.entries) == 0 {
		return nil
	}
	return req
}

// dueState is what makes every shard's records due: a Flush or Close, or
// 5 MiB buffered.
type dueState struct{ flush bool }

// shardDue reports whether a shard's pending records should go now: when
// it has BatchSize of them, as many as its limits let one call carry, or
// one BufferTime old, or when dueState says so. A shard that is not due
// waits for more records rather than spend one of its MaxInFlight calls on
// a few.
func (p *Producer) shardDue(q *shardQ, now time.Time, due dueState) bool {
	switch {
	case due.flush:
		return true
	case len(q.pending) >= p.cfg.batchSize:
		return true
	case !now.Before(q.pending[0].enq.Add(p.cfg.bufferTime)):
		return true
	}
	r, _ := q.lim.budget(now)
	return len(q.pending) >= r
}

// claimKeys marks ks as in flight unless one of them already is.
func (p *Producer) claimKeys(ks []string) bool {
	for _, k := range ks {
		if _, ok := p.keysInFlight[k]; ok {
			return false
		}
	}
	for _, k := range ks {
		p.keysInFlight[k] = struct{}{}
	}
	return true
}

// aggregate packs a shard's pending records into Kinesis records.
func (p *Producer) aggregate(q *shardQ) {
	pend := q.pending
	q.pending = nil
	in := make([]records.UserRecord, len(pend))
	for i, u := range pend {
		in[i] = u.ur
	}
	outs, err := p.cfg.processor.Aggregator.Aggregate(p.runCtx, in, records.MaxRecordSize)
	items, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		p.bufRecords -= len(pend)
		for _, u := range pend {
			p.bufBytes -= u.size
		}
		p.failRecs(pend, 0, fmt.Errorf("aggregate: %w", batchErr))
		return
	}
	bad := map[int]error{}
	for _, ie := range items {
		bad[ie.Index] = ie.Err
	}
	var failed []*urec
	j := 0
	skip := func() {
		for j < len(pend) {
			if err, ok := bad[j]; ok {
				failed = append(failed, pend[j])
				p.bufRecords--
				p.bufBytes -= pend[j].size
				p.failRecs(pend[j:j+1], 0, fmt.Errorf("aggregate: %w", err))
				j++
				continue
			}
			break
		}
	}
	for _, o := range outs {
		e := &kentry{shard: q, pk: o.PartitionKey, ehk: o.ExplicitHashKey, data: o.Data, size: len(o.Data) + len(o.PartitionKey)}
		for k := 0; k < o.Count; k++ {
			skip()
			if j >= len(pend) {
				break
			}
			e.recs = append(e.recs, pend[j])
			j++
		}
		if len(e.recs) == 0 {
			continue
		}
		e.hash = e.recs[0].hash
		if first := e.recs[0].ur; first.PartitionKey != o.PartitionKey || first.ExplicitHashKey != o.ExplicitHashKey {
			// An aggregator may key the aggregate differently from its first
			// record. A key that does not parse (a plugin's bug) keeps the
			// first record's hash, the shard the records were grouped for;
			// Kinesis then refuses the entry and its records are reported.
			if h, err := kinesisapi.RecordHashKey(o.PartitionKey, o.ExplicitHashKey); err == nil {
				e.hash = h
			}
		}
		// Buffered bytes now count the aggregate instead of its records.
		for _, u := range e.recs {
			p.bufBytes -= u.size
		}
		p.bufBytes += e.size
		if p.cfg.orderPerKey {
			e.keys = distinctKeys(e.recs)
		}
		q.ready = append(q.ready, e)
	}
	skip()
	if j < len(pend) {
		rest := pend[j:]
		p.bufRecords -= len(rest)
		for _, u := range rest {
			p.bufBytes -= u.size
		}
		p.failRecs(rest, 0, fmt.Errorf("aggregate: aggregator %q left %d records out of its outputs", p.cfg.processor.Name, len(rest)))
	}
}

func distinctKeys(us []*urec) []string {
	if len(us) == 1 {
		return []string{us[0].ur.PartitionKey}
	}
	seen := make(map[string]struct{}, len(us))
	out := make([]string, 0, len(us))
	for _, u := range us {
		if _, ok := seen[u.ur.PartitionKey]; !ok {
			seen[u.ur.PartitionKey] = struct{}{}
			out = append(out, u.ur.PartitionKey)
		}
	}
	return out
}

// resultsBuffer is the room results has. A call's goroutine may wait for
// more: run receives every result before it returns.
const resultsBuffer = 64

// launch starts one PutRecords call. Its goroutine is owned by run, which
// waits for every call's result before it returns.
func (p *Producer) launch(req *request) {
	p.inFlight++
	for q := range req.usage {
		q.inFlight++
	}
	p.stats.inFlight.Add(1)
	p.stats.requests.Add(1)
	entries := make([]types.PutRecordsRequestEntry, len(req.entries))
	for i, e := range req.entries {
		entries[i] = types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.pk)}
		if e.ehk != "" {
			entries[i].ExplicitHashKey = aws.String(e.ehk)
		}
		if e.attempts > 0 {
			p.stats.retried.Add(1)
		}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries}
	go func() {
		ctx, cancel := context.WithTimeout(p.runCtx, p.cfg.requestTimeout)
		start := time.Now()
		out, err := p.client.PutRecords(ctx, in)
		cancel()
		p.results <- result{req: req, out: out, err: err, start: start, dur: time.Since(start)}
	}()
}

// handle settles one call: delivered records are finished, failed entries
// go back to the front of their shard's queue (after a backoff) or, past
// the retry limit, to the error path.
func (p *Producer) handle(r result) {
	p.inFlight--
	for q := range r.req.usage {
		q.inFlight--
	}
	p.stats.inFlight.Add(-1)
	p.stats.latencyTotal.Add(int64(r.dur))
	for {
		m := p.stats.latencyMax.Load()
		if int64(r.dur) <= m || p.stats.latencyMax.CompareAndSwap(m, int64(r.dur)) {
			break
		}
	}
	now := time.Now()
	entries := r.req.entries
	errs := make([]error, len(entries))
	throttled := make([]bool, len(entries))
	var callErr error
	if r.err == nil && (r.out == nil || len(r.out.Records) != len(entries)) {
		n := 0
		if r.out != nil {
			n = len(r.out.Records)
		}
		r.err = fmt.Errorf("putrecords to stream %s: %d results for %d entries", p.stream, n, len(entries))
	}
	if r.err != nil {
		callErr = fmt.Errorf("putrecords to stream %s: %w", p.stream, r.err)
		t := kinesisapi.IsThrottle(r.err)
		for i := range entries {
			errs[i], throttled[i] = callErr, t
		}
		if kinesisapi.IsNotFound(r.err) {
			p.refreshSoon()
		}
	} else {
		for i, res := range r.out.Records {
			if res.ErrorCode != nil {
				ee := &EntryError{Code: aws.ToString(res.ErrorCode), Message: aws.ToString(res.ErrorMessage)}
				errs[i], throttled[i] = ee, ee.Throttled()
				continue
			}
			if res.ShardId != nil && entries[i].shard.id != "" && *res.ShardId != entries[i].shard.id {
				p.refreshSoon()
			}
		}
	}

	if p.cfg.orderPerKey {
		for _, e := range entries {
			for _, k := range e.keys {
				delete(p.keysInFlight, k)
			}
		}
	}
	info := FlushInfo{Entries: len(entries), UserRecords: r.req.users, Bytes: r.req.bytes, Duration: r.dur, Err: callErr}
	type shardOutcome struct{ failed, throttled bool }
	outcome := map[*shardQ]*shardOutcome{}
	retry := map[*shardQ][]*kentry{}
	var done []*urec
	for i, e := range entries {
		o := outcome[e.shard]
		if o == nil {
			o = &shardOutcome{}
			outcome[e.shard] = o
		}
		if errs[i] == nil {
			p.stats.kinesisRecords.Add(1)
			p.stats.recordsDelivered.Add(int64(len(e.recs)))
			for _, u := range e.recs {
				p.stats.bytesDelivered.Add(int64(u.size))
			}
			done = append(done, e.recs...)
			continue
		}
		info.Failed++
		o.failed = true
		e.attempts++
		if throttled[i] {
			info.Throttled++
			o.throttled = true
			p.stats.throttled.Add(1)
		}
		if p.aborting {
			p.failRecs(e.recs, e.attempts, fmt.Errorf("%w; last attempt: %w", p.abortErr, errs[i]))
			continue
		}
		if e.attempts > p.cfg.retryLimit {
			p.failRecs(e.recs, e.attempts, errs[i])
			continue
		}
		retry[e.shard] = append(retry[e.shard], e)
	}
	p.finish(done)
	for q, u := range r.req.usage {
		q.lim.done(u, r.start, now)
	}
	for q, o := range outcome {
		if o.throttled {
			q.lim.throttled()
		} else if !o.failed {
			q.lim.succeeded()
		}
		if !o.failed {
			q.retries = 0
			q.retryAt = time.Time{}
			continue
		}
		q.retries++
		q.retryAt = now.Add(p.backoff(q.retries))
	}
	for q, es := range retry {
		q.ready = append(es, q.ready...)
		for _, e := range es {
			p.bufRecords += len(e.recs)
			p.bufBytes += e.size
		}
	}
	if info.Failed > 0 {
		p.cfg.logger.Debug("putrecords entries failed", "stream", p.stream, "failed", info.Failed, "throttled", info.Throttled, "err", callErr)
	}
	if p.cfg.afterFlush != nil {
		p.cfg.afterFlush(info)
	}
}

// backoff is the full-jitter exponential backoff for the n-th consecutive
// failure (n >= 1).
func (p *Producer) backoff(n int) time.Duration {
	c := p.cfg.backoffMax
	if n-1 < 40 {
		if d := p.cfg.backoffBase << (n - 1); d > 0 && d < c {
			c = d
		}
	}
	return rand.N(c + 1)
}

// failRecs gives records up: error callback, Close's error, finished.
func (p *Producer) failRecs(us []*urec, attempts int, err error) {
	if len(us) == 0 {
		return
	}
	p.stats.failed.Add(int64(len(us)))
	p.cfg.logger.Warn("records not delivered", "stream", p.stream, "records", len(us), "attempts", attempts, "err", err)
	frs := make([]FailedRecord, len(us))
	for i, u := range us {
		frs[i] = FailedRecord{Item: u.item, PartitionKey: u.ur.PartitionKey, ExplicitHashKey: u.ur.ExplicitHashKey,
			Data: u.ur.Data, Attempts: attempts, Err: err, seq: u.seq}
		if p.cfg.errorCallback != nil {
			p.cfg.errorCallback(frs[i])
		}
	}
	p.mu.Lock()
	p.failCount += len(frs)
	if room := maxListedFailures - len(p.failures); room > 0 {
		p.failures = append(p.failures, frs[:min(room, len(frs))]...)
	}
	p.mu.Unlock()
	p.finish(us)
}

// finish releases the queue capacity of delivered or failed records and
// wakes the Flush and Close calls waiting for them.
func (p *Producer) finish(us []*urec) {
	if len(us) == 0 {
		return
	}
	bytes := 0
	for _, u := range us {
		bytes += u.size
		p.finished[u.seq] = true
	}
	for p.finished[p.low] {
		delete(p.finished, p.low)
		p.low++
	}
	p.mu.Lock()
	p.queued -= len(us)
	p.queuedBytes -= bytes
	p.lowWater = p.low
	if !p.closed {
		close(p.space)
		p.space = make(chan struct{})
	}
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.target <= p.low {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
	p.mu.Unlock()
}

// failQueued gives up every record still queued when Close's context ended.
func (p *Producer) failQueued() {
	p.drain()
	for _, q := range p.order {
		for _, e := range q.ready {
			p.failRecs(e.recs, e.attempts, p.abortErr)
		}
		q.ready = nil
		p.failRecs(q.pending, 0, p.abortErr)
		q.pending = nil
	}
	p.bufRecords, p.bufBytes = 0, 0
}
