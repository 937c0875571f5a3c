package shards

import (
	"sync"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// entry is one user record of a shard, from fetch until it is finished.
type entry struct {
	seq  string
	sub  int64
	last bool // the last user record of its Kinesis record
	done bool
}

// tracker keeps a shard's records in fetch order and computes the
// checkpoint: the highest contiguous finished (sequence, sub-sequence).
// The shard's fetcher adds entries; the delivery side finishes them.
type tracker struct {
	mu      sync.Mutex
	pending []*entry // fetch order; pending[0] is the oldest unfinished
	cp      checkpoint.Checkpoint
	dirty   bool // cp advanced since the last take
	stopped bool // the shard stopped: undelivered records are dropped
	// validUntil is when the lease may lapse unless renewed (zero: the
	// store does not say); no record is delivered after it.
	validUntil time.Time
	onExpire   func() // called once when a delivery finds the lease lapsed
	inflight   int    // delivered, not yet finished
	idle       chan struct{}
	drained    chan struct{} // closed when pending becomes empty
}

func newTracker(start checkpoint.Checkpoint) *tracker {
	return &tracker{cp: start}
}

// add appends a record in fetch order. A record added already done (a
// decode failure, for example) advances the checkpoint once the records
// before it finish.
func (t *tracker) add(e *entry) {
	t.mu.Lock()
	t.pending = append(t.pending, e)
	if e.done {
		t.advanceLocked()
	}
	t.mu.Unlock()
}

// deliver marks e as handed to the user. It returns false when the shard
// stopped, in which case the record must not be delivered.
func (t *tracker) deliver() bool {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return false
	}
	if !t.validUntil.IsZero() && time.Now().After(t.validUntil) {
		// The lease may belong to another worker by now: stop the shard;
		// it is taken again (from the finished records) if it is free.
		t.stopped = true
		t.mu.Unlock()
		if t.onExpire != nil {
			t.onExpire()
		}
		return false
	}
	t.inflight++
	t.mu.Unlock()
	return true
}

// extend moves the lease deadline to until (never back).
func (t *tracker) extend(until time.Time) {
	t.mu.Lock()
	if until.After(t.validUntil) {
		t.validUntil = until
	}
	t.mu.Unlock()
}

// finish marks a delivered record as finished.
func (t *tracker) finish(e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.done = true
	t.inflight--
	t.advanceLocked()
	if t.inflight == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// release undoes deliver for a record that was not handled (the consumer
// stopped before handing it over).
func (t *tracker) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight--
	if t.inflight == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

func (t *tracker) advanceLocked() {
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		e := t.pending[n]
		t.cp = checkpoint.Checkpoint{SequenceNumber: e.seq, SubSequenceNumber: e.sub, Complete: e.last}
		t.dirty = true
		t.pending[n] = nil
		n++
	}
	if n > 0 {
		t.pending = t.pending[n:]
		if len(t.pending) == 0 {
			t.pending = nil
		}
	}
	if len(t.pending) == 0 && t.drained != nil {
		close(t.drained)
		t.drained = nil
	}
}

// waitEmpty returns a channel closed once every fetched record is finished.
func (t *tracker) waitEmpty() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if len(t.pending) == 0 {
		close(ch)
	} else {
		t.drained = ch
	}
	return ch
}

// stop makes every undelivered record of the shard be dropped and returns
// a channel closed once no delivered record is in flight.
func (t *tracker) stop() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	ch := make(chan struct{})
	if t.inflight == 0 {
		close(ch)
	} else {
		t.idle = ch
	}
	return ch
}

// checkpoint returns the current checkpoint and whether it advanced since
// the last call that consumed it.
func (t *tracker) checkpoint(consume bool) (checkpoint.Checkpoint, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dirty
	if consume {
		t.dirty = false
	}
	return t.cp, d
}

// markDirty re-arms a checkpoint write that failed.
func (t *tracker) markDirty() {
	t.mu.Lock()
	t.dirty = true
	t.mu.Unlock()
}

// empty reports whether every fetched record is finished.
func (t *tracker) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) == 0
}

func (t *tracker) pendingLen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}
