package shards

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/kinesisapi"
)

// engine is one run of a consumer (one Records or Run call). It owns the
// coordinator goroutine, which owns the shard runners.
type engine struct {
	c      *Consumer
	ctx    context.Context // fetching and leasing; cancelled by shutdown
	cancel context.CancelFunc
	// final is for writes after ctx is cancelled: final checkpoints and
	// releases (bounded by the shutdown timeout where used).
	final  context.Context
	decode bool
	queue  chan *item
	fatal  chan error // first fatal error; buffered
	done   chan *runner

	mu   sync.Mutex
	held map[string]*runner // every running shard; for Stats and heartbeats

	// Set by the heartbeat goroutine.
	live      atomic.Int64 // live workers, as the store last counted them
	sessionTO time.Duration
	firstBeat chan struct{} // closed after the first heartbeat
	hbDone    chan struct{}

	coordDone chan struct{}
	stopped   chan struct{}
	once      sync.Once
}

func newEngine(c *Consumer, parent context.Context, decode bool) *engine {
	ctx, cancel := context.WithCancel(parent)
	return &engine{
		c: c, ctx: ctx, cancel: cancel, final: context.WithoutCancel(parent), decode: decode,
		queue:     make(chan *item, c.cfg.maxQueueSize),
		fatal:     make(chan error, 1),
		done:      make(chan *runner),
		held:      map[string]*runner{},
		firstBeat: make(chan struct{}),
		hbDone:    make(chan struct{}),
		coordDone: make(chan struct{}),
		stopped:   make(chan struct{}),
	}
}

func (e *engine) startCoordinator() {
	e.live.Store(1)
	if t, ok := e.c.store.(checkpoint.Timing); ok {
		e.sessionTO = t.SessionTimeout()
	}
	go e.heartbeat()
	go e.coordinate()
}

// heartbeat renews the leases of running shards every lease interval, in
// its own goroutine so that slow Kinesis calls of the coordinator never
// delay a renewal. A lost lease stops its shard; each renewal extends the
// time until which the shard may deliver records.
func (e *engine) heartbeat() {
	defer close(e.hbDone)
	t := time.NewTicker(e.c.cfg.leaseInterval)
	defer t.Stop()
	for first := true; ; first = false {
		e.beat()
		if first {
			close(e.firstBeat)
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *engine) beat() {
	c := e.c
	ctx := e.ctx
	// Every lease is renewed until its runner released it, stopping ones
	// included: a shard being given up still finishes its in-flight work
	// under the lease.
	e.mu.Lock()
	active := make([]*runner, 0, len(e.held))
	for _, r := range e.held {
		if r.lostErr() == nil && !r.released.Load() {
			active = append(active, r)
		}
	}
	e.mu.Unlock()
	start := time.Now()
	renewErrs := make([]error, len(active))
	if br, ok := c.store.(checkpoint.BatchRenewer); ok {
		leases := make([]checkpoint.Lease, len(active))
		for i, r := range active {
			leases[i] = r.lease
		}
		n, errs, err := br.HeartbeatAll(ctx, leases)
		switch {
		case err == nil && len(errs) != len(active):
			err = fmt.Errorf("store renewed %d leases for %d", len(errs), len(active))
			fallthrough
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			c.report(&ShardError{Stream: c.stream, Op: "heartbeat", Err: err})
			for i := range renewErrs {
				renewErrs[i] = err
			}
		default:
			e.live.Store(int64(max(n, 1)))
			copy(renewErrs, errs)
		}
	} else {
		n, err := c.store.Heartbeat(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.report(&ShardError{Stream: c.stream, Op: "heartbeat", Err: err})
		} else {
			e.live.Store(int64(max(n, 1)))
		}
		for i, r := range active {
			renewErrs[i] = c.store.Renew(ctx, r.lease)
		}
	}
	for i, r := range active {
		err := renewErrs[i]
		if r.released.Load() {
			continue // released meanwhile: the answer no longer matters
		}
		switch {
		case err == nil:
			r.renewedAt = start
			if e.sessionTO > 0 {
				// The store counts the session from when it ran the
				// renewal, which is after start.
				r.tr.extend(start.Add(e.sessionTO))
			}
		case errors.Is(err, checkpoint.ErrLeaseLost):
			r.lose(err)
		case ctx.Err() != nil:
			return
		default:
			c.report(&ShardError{Stream: c.stream, ShardID: r.shard.ID, Op: "renew lease", Err: err})
			if e.sessionTO > 0 && time.Since(r.renewedAt) > e.sessionTO {
				// Unrenewed past the session timeout: another worker may
				// own it now, so stop reading before it does.
				r.lose(errors.Join(checkpoint.ErrLeaseLost, err))
			}
		}
	}
}

// fail records a fatal error and stops the engine.
func (e *engine) fail(err error) {
	select {
	case e.fatal <- err:
	default:
	}
	e.cancel()
}

// shutdown stops fetching and leasing, waits for every shard runner to
// write its final checkpoint and release its lease, and detaches the
// engine from the consumer.
func (e *engine) shutdown() {
	e.once.Do(func() {
		e.cancel()
		<-e.coordDone
		e.c.mu.Lock()
		e.c.eng = nil
		e.c.mu.Unlock()
		close(e.stopped)
	})
}

func (e *engine) heldShards() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.held))
	for id := range e.held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// coordinate is the lease loop: heartbeat, refresh the shard list, renew
// held leases, balance, and take free or expired shards. It starts one
// runner per leased shard and joins them all before returning.
func (e *engine) coordinate() {
	defer close(e.coordDone)
	c := e.c
	runners := map[string]*runner{}
	var (
		shards   []kinesisapi.Shard
		listedAt time.Time
		needList = true
		cooldown = map[string]int{}
		ticker   = time.NewTicker(c.cfg.leaseInterval)
	)
	defer ticker.Stop()
	// What this consumer finished of each shard it read: a shard it takes
	// again (after losing its lease while the store was unreachable, say)
	// starts after it even if the store's checkpoint is behind. Records
	// this consumer finished are finished whoever owns the shard now.
	finished := map[string]checkpoint.Checkpoint{}
	exited := func(r *runner) {
		if cp, _ := r.tr.checkpoint(false); checkpoint.Compare(cp, finished[r.shard.ID]) > 0 {
			finished[r.shard.ID] = cp
		}
		delete(runners, r.shard.ID)
		e.mu.Lock()
		delete(e.held, r.shard.ID)
		e.mu.Unlock()
		if r.ended {
			needList = true
		}
	}

	round := func() {
		ctx := e.ctx
		if needList || time.Since(listedAt) >= c.cfg.listInterval {
			s, err := kinesisapi.ListShards(ctx, c.client, c.stream)
			switch {
			case err == nil:
				shards, listedAt, needList = s, time.Now(), false
			case ctx.Err() != nil:
				return
			case kinesisapi.IsNotFound(err):
				e.fail(&ShardError{Stream: c.stream, Op: "list shards", Err: err})
				return
			default:
				c.report(&ShardError{Stream: c.stream, Op: "list shards", Err: err})
			}
		}
		if len(shards) == 0 {
			return
		}
		infos, err := c.store.Leases(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.report(&ShardError{Stream: c.stream, Op: "list leases", Err: err})
			}
			return
		}
		byShard := make(map[string]checkpoint.LeaseInfo, len(infos))
		for _, li := range infos {
			byShard[li.Shard] = li
		}
		eligible := eligibleShards(shards, byShard)
		live := int(e.live.Load())
		for id, n := range cooldown {
			if n <= 1 {
				delete(cooldown, id)
			} else {
				cooldown[id] = n - 1
			}
		}
		nShards := len(eligible)
		ceil, floor := (nShards+live-1)/live, nShards/live
		if m := c.cfg.maxShardConsumers; m > 0 {
			ceil, floor = min(ceil, m), min(floor, m)
		}
		held := 0
		for _, r := range runners {
			if !r.stopping.Load() && r.lostErr() == nil {
				held++
			}
		}
		owners := map[string]bool{}
		for _, s := range eligible {
			if li := byShard[s.ID]; li.Live {
				owners[li.Owner] = true
			}
		}
		// Some live worker holds nothing while it could: give up shards
		// above the floor, one a round, so it can take them.
		starved := nShards >= live && len(owners) < live
		release := 0
		switch {
		case held > ceil:
			release = held - ceil
		case starved && held > floor:
			release = 1
		}
		if release > 0 {
			ids := make([]string, 0, len(runners))
			for id, r := range runners {
				if !r.stopping.Load() && r.lostErr() == nil {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			for _, id := range ids[len(ids)-release:] {
				runners[id].release()
				cooldown[id] = 3
				held--
			}
			return
		}
		limit := ceil
		if starved {
			limit = floor
		}
		if held >= limit {
			return
		}
		// Free shards first, then expired ones (as the store judges them);
		// shards live under another worker are left alone.
		var free, expired []kinesisapi.Shard
		for _, s := range eligible {
			if _, ok := runners[s.ID]; ok || cooldown[s.ID] > 0 {
				continue
			}
			switch li := byShard[s.ID]; {
			case li.Owner == "":
				free = append(free, s)
			case !li.Live:
				expired = append(expired, s)
			}
		}
		for _, s := range append(free, expired...) {
			if held >= limit {
				break
			}
			takeStart := time.Now()
			l, err := c.store.Take(ctx, s.ID)
			switch {
			case err == nil:
			case errors.Is(err, checkpoint.ErrLeaseHeld):
				continue
			case ctx.Err() != nil:
				return
			default:
				c.report(&ShardError{Stream: c.stream, ShardID: s.ID, Op: "take lease", Err: err})
				continue
			}
			c.stats.leasesTaken.Add(1)
			if l.Checkpoint.Finished {
				// Finished since we listed: give it back untouched.
				if err := c.store.Release(ctx, l); err != nil && ctx.Err() == nil {
					c.report(&ShardError{Stream: c.stream, ShardID: s.ID, Op: "release finished lease", Err: err})
				}
				continue
			}
			fromStart := false
			for _, p := range s.Parents() {
				if li, ok := byShard[p]; ok && li.Checkpoint.Finished {
					fromStart = true
				}
			}
			start := l.Checkpoint
			if mine, ok := finished[s.ID]; ok && checkpoint.Compare(mine, start) > 0 {
				start = mine
			}
			r := newRunner(e, s, l, start, fromStart)
			if e.sessionTO > 0 {
				r.tr.extend(takeStart.Add(e.sessionTO))
			}
			runners[s.ID] = r
			e.mu.Lock()
			e.held[s.ID] = r
			e.mu.Unlock()
			held++
			go r.run()
		}
	}

	select {
	case <-e.firstBeat:
	case <-e.ctx.Done():
	}
	for {
		round()
		select {
		case <-e.ctx.Done():
		case <-ticker.C:
			continue
		case r := <-e.done:
			exited(r)
			continue
		}
		break
	}
	for len(runners) > 0 {
		exited(<-e.done)
	}
	<-e.hbDone
	// Leave the worker registry so the others' fair share grows at once.
	if lv, ok := c.store.(checkpoint.Leaver); ok {
		ctx, cancel := context.WithTimeout(e.final, c.cfg.shutdownTimeout)
		if err := lv.Leave(ctx); err != nil {
			c.report(&ShardError{Stream: c.stream, Op: "leave worker registry", Err: err})
		}
		cancel()
	}
}

// eligibleShards are the shards that may be read now: not finished, and
// every parent still listed has finished (a parent no longer listed was
// trimmed away, so it cannot hold unread records).
func eligibleShards(shards []kinesisapi.Shard, leases map[string]checkpoint.LeaseInfo) []kinesisapi.Shard {
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[s.ID] = true
	}
	var out []kinesisapi.Shard
	for _, s := range shards {
		if leases[s.ID].Checkpoint.Finished {
			continue
		}
		ok := true
		for _, p := range s.Parents() {
			if listed[p] && !leases[p].Checkpoint.Finished {
				ok = false
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}
