package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// Short lease timings for the tests.
const (
	testSession   = 1500 * time.Millisecond
	testHeartbeat = 250 * time.Millisecond
)

func redisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	srv := harness.Redis(tb)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		tb.Fatalf("redis url %q: %v", srv.URL, err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// redisStore returns a worker's store on (app, stream) with short timings;
// the keys are deleted at cleanup.
func redisStore(tb testing.TB, rc *redis.Client, app, stream, worker string) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(rc, app, stream, redisstore.WithSessionTimeout(testSession),
		redisstore.WithHeartbeatFrequency(testHeartbeat), redisstore.WithWorkerID(worker))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, err := rc.Keys(ctx, s.KeyPrefix()+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rc.Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("clean up %s: %v", s.KeyPrefix(), err)
		}
	})
	return s
}

// leaseLog records when each consumer started and stopped reading each
// shard, and checks every delivery against it.
type leaseLog struct {
	mu        sync.Mutex
	start     time.Time
	intervals []interval
	open      map[[2]string]int // (worker, shard) -> index in intervals
	changed   chan struct{}
	bad       []string
}

type interval struct {
	worker, shard string
	from, to      time.Duration // since start; to < 0 while open
}

func newLeaseLog() *leaseLog {
	return &leaseLog{start: time.Now(), open: map[[2]string]int{}, changed: make(chan struct{}, 1)}
}

func (l *leaseLog) hook(worker string) shards.Option {
	return shards.OnLease(func(ev shards.LeaseEvent) {
		l.mu.Lock()
		defer l.mu.Unlock()
		k := [2]string{worker, ev.Shard}
		now := time.Since(l.start)
		if ev.Acquired {
			if _, ok := l.open[k]; ok {
				l.bad = append(l.bad, fmt.Sprintf("%s acquired %s twice", worker, ev.Shard))
			}
			l.open[k] = len(l.intervals)
			l.intervals = append(l.intervals, interval{worker: worker, shard: ev.Shard, from: now, to: -1})
		} else {
			i, ok := l.open[k]
			if !ok {
				l.bad = append(l.bad, fmt.Sprintf("%s stopped %s without acquiring it", worker, ev.Shard))
				return
			}
			l.intervals[i].to = now
			delete(l.open, k)
		}
		select {
		case l.changed <- struct{}{}:
		default:
		}
	})
}

// delivered checks that worker holds shard while it delivers a record.
func (l *leaseLog) delivered(worker, shard string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.open[[2]string{worker, shard}]; !ok && len(l.bad) < 10 {
		l.bad = append(l.bad, fmt.Sprintf("%s delivered a record of %s without holding it", worker, shard))
	}
}

func (l *leaseLog) held() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for k := range l.open {
		out[k[0]] = append(out[k[0]], k[1])
	}
	return out
}

// check fails the test if two workers ever held one shard at once.
func (l *leaseLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bad {
		t.Error(b)
	}
	byShard := map[string][]interval{}
	for _, iv := range l.intervals {
		if iv.to < 0 {
			iv.to = 1 << 62
		}
		byShard[iv.shard] = append(byShard[iv.shard], iv)
	}
	for shard, ivs := range byShard {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].from < ivs[j].from })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].from < ivs[i-1].to {
				t.Errorf("shard %s held by %s [%v, %v] and %s from %v at once", shard, ivs[i-1].worker, ivs[i-1].from, ivs[i-1].to, ivs[i].worker, ivs[i].from)
			}
		}
	}
}

// waitFor waits until cond holds, re-checking at every lease change.
func (l *leaseLog) waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-l.changed:
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}

// Three consumers in one process share a 4-shard stream through Redis
// leases: every record is delivered, no shard ever has two owners at once,
// and each consumer ends with 1 or 2 shards.
func TestConsumerThreeWorkersShareShardsThroughRedis(t *testing.T) {
	env := harness.Kinesis(t)
	rc := redisClient(t)
	stream := env.NewStream(t, 4)
	app := harness.UniqueName(t)
	const total = 40000
	entries, items := jsonEntries(t, "w", total, 1000)
	putEntries(t, env, stream, entries[:total/2])

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := newLeaseLog()
	type delivery struct {
		worker string
		id     string
	}
	deliveries := make(chan delivery, 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	workers := []string{"w1", "w2", "w3"}
	started := make([]chan struct{}, 3)
	for i := range started {
		started[i] = make(chan struct{})
	}
	close(started[0])
	for i, w := range workers {
		c := newConsumer(t, env, stream, shards.Checkpointer(redisStore(t, rc, app, stream, w)), log.hook(w),
			shards.LeaseInterval(testHeartbeat), shards.ErrorCallback(func(err error) {
				t.Logf("%v %s: %v", time.Since(log.start), w, err)
			}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-started[i]:
			case <-ctx.Done():
				return
			}
			if i == 2 {
				// The third worker uses the batch handler API.
				err := c.Run(ctx, handlerFunc(func(ctx context.Context, b []records.Record) (records.HandlerOutput, error) {
					out := records.HandlerOutput{Results: make([]records.Result, len(b))}
					for _, r := range b {
						log.delivered(w, r.ShardID)
						var it testItem
						if err := json.Unmarshal(r.Data, &it); err != nil {
							return out, err
						}
						select {
						case deliveries <- delivery{w, it.ID}:
						case <-ctx.Done():
							return out, ctx.Err()
						}
					}
					return out, nil
				}))
				if !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("%s: %v", w, err)
				}
				return
			}
			for rec, err := range c.Records(ctx) {
				if err != nil {
					errs <- fmt.Errorf("%s: %w", w, err)
					return
				}
				log.delivered(w, rec.ShardID)
				select {
				case deliveries <- delivery{w, decodeItem(t, rec).ID}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		if _, err := tryPutEntries(ctx, env, stream, entries[total/2:]); err != nil {
			errs <- err
		}
	}()

	seen := make(map[string]int, total)
	perWorker := map[string]int{}
	for len(seen) < total {
		select {
		case d := <-deliveries:
			seen[d.id]++
			perWorker[d.worker]++
			// Start the others while the first is busy, so that leases
			// move between running consumers.
			if len(seen) == 2000 {
				close(started[1])
			}
			if len(seen) == 4000 {
				close(started[2])
			}
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d records delivered before the deadline (per worker %v)", len(seen), total, perWorker)
		}
	}
	for _, it := range items {
		if seen[it.ID] == 0 {
			t.Fatalf("%s never delivered", it.ID)
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	balanced := func() bool {
		h := log.held()
		n := 0
		for _, w := range workers {
			if len(h[w]) < 1 || len(h[w]) > 2 {
				return false
			}
			n += len(h[w])
		}
		return n == 4
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	ok := log.waitFor(wctx, balanced)
	wcancel()
	held := log.held()
	cancel()
	wg.Wait()
	log.check(t)
	if !ok {
		t.Fatalf("consumers ended holding %v, want 1 or 2 shards each", held)
	}
	t.Logf("delivered %d records (%d duplicates) per worker %v; final shards %v; %d lease intervals", total, dups, perWorker, held, len(log.intervals))
	if dups != 0 {
		t.Errorf("%d records delivered twice during clean lease hand-overs", dups)
	}
}

// crashable is a store that stops answering when crashed: the process is
// gone, so nothing is renewed, checkpointed or released.
type crashable struct {
	checkpoint.Store
	crashed atomic.Bool
}

var errCrashed = errors.New("worker crashed")

func (s *crashable) Heartbeat(ctx context.Context) (int, error) {
	if s.crashed.Load() {
		return 0, errCrashed
	}
	return s.Store.Heartbeat(ctx)
}

func (s *crashable) Take(ctx context.Context, shard string) (checkpoint.Lease, error) {
	if s.crashed.Load() {
		return checkpoint.Lease{}, errCrashed
	}
	return s.Store.Take(ctx, shard)
}

func (s *crashable) Renew(ctx context.Context, l checkpoint.Lease) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Store.Renew(ctx, l)
}

func (s *crashable) Checkpoint(ctx context.Context, l checkpoint.Lease, c checkpoint.Checkpoint) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Store.Checkpoint(ctx, l, c)
}

func (s *crashable) Release(ctx context.Context, l checkpoint.Lease) error {
	if s.crashed.Load() {
		return errCrashed
	}
	return s.Store.Release(ctx, l)
}

// A consumer that stops heartbeating without releasing (a crash): the
// others take its shards within session timeout + one heartbeat, and the
// records after its last checkpoint are delivered again; none is lost.
func TestConsumerCrashedWorkerShardsAreTakenOver(t *testing.T) {
	env := harness.Kinesis(t)
	rc := redisClient(t)
	stream := env.NewStream(t, 4)
	app := harness.UniqueName(t)
	entries, items := jsonEntries(t, "c", 4000, 200)
	putEntries(t, env, stream, entries[:2000])

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := newLeaseLog()
	type delivery struct{ worker, id, shard string }
	deliveries := make(chan delivery, 1024)
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	run := func(ctx context.Context, w string, c *shards.Consumer) {
		defer wg.Done()
		for rec, err := range c.Records(ctx) {
			if err != nil {
				errs <- fmt.Errorf("%s: %w", w, err)
				return
			}
			select {
			case deliveries <- delivery{w, decodeItem(t, rec).ID, rec.ShardID}:
			case <-ctx.Done():
				return
			}
		}
	}
	// The victim never checkpoints on its own (a long interval), so every
	// record it delivers is after its last checkpoint.
	victimStore := &crashable{Store: redisStore(t, rc, app, stream, "victim")}
	victim := newConsumer(t, env, stream, shards.Checkpointer(victimStore), log.hook("victim"),
		shards.LeaseInterval(testHeartbeat), shards.CheckpointInterval(time.Hour))
	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	wg.Add(1)
	go run(vctx, "victim", victim)
	// The victim takes every shard before the others start.
	if !log.waitFor(ctx, func() bool { return len(log.held()["victim"]) == 4 }) {
		t.Fatalf("victim holds %v", log.held())
	}
	for _, w := range []string{"a", "b"} {
		c := newConsumer(t, env, stream, shards.Checkpointer(redisStore(t, rc, app, stream, w)), log.hook(w),
			shards.LeaseInterval(testHeartbeat))
		wg.Add(1)
		go run(ctx, w, c)
	}
	// Wait until the others hold some shards and the victim still holds
	// at least one, and has delivered records.
	if !log.waitFor(ctx, func() bool {
		h := log.held()
		return len(h["victim"]) >= 1 && len(h["victim"]) <= 2 && len(h["a"])+len(h["b"])+len(h["victim"]) == 4
	}) {
		t.Fatalf("no balance before the crash: %v", log.held())
	}
	seen := map[string]map[string]int{}
	count := func(d delivery) {
		if seen[d.id] == nil {
			seen[d.id] = map[string]int{}
		}
		seen[d.id][d.worker]++
	}
	for len(seen) < 2000 {
		select {
		case d := <-deliveries:
			count(d)
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of 2000 records before the crash", len(seen))
		}
	}
	victimShards := log.held()["victim"]
	victimCPs := map[string]checkpoint.Checkpoint{}
	for _, s := range victimShards {
		cp, err := victimStore.Get(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		victimCPs[s] = cp
	}
	// Crash: the store stops answering, then the process goes away.
	victimStore.crashed.Store(true)
	crashAt := time.Since(log.start)
	vcancel()
	putEntries(t, env, stream, entries[2000:])

	for len(seen) < len(items) {
		select {
		case d := <-deliveries:
			count(d)
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d records delivered", len(seen), len(items))
		}
	}
	// Records the victim delivered after its last checkpoint come again.
	redelivered := 0
	for _, by := range seen {
		if by["victim"] > 0 && by["a"]+by["b"] > 0 {
			redelivered++
		}
	}
	takeover := map[string]time.Duration{}
	log.mu.Lock()
	for _, iv := range log.intervals {
		if iv.worker != "victim" && iv.from > crashAt {
			for _, s := range victimShards {
				if iv.shard == s {
					if _, ok := takeover[s]; !ok {
						takeover[s] = iv.from - crashAt
					}
				}
			}
		}
	}
	log.mu.Unlock()
	cancel()
	wg.Wait()
	log.check(t)
	t.Logf("victim held %v (checkpoints %v); taken over after %v; %d records delivered again", victimShards, victimCPs, takeover, redelivered)
	if len(takeover) != len(victimShards) {
		t.Fatalf("victim's shards %v taken over: %v", victimShards, takeover)
	}
	for s, d := range takeover {
		// Expiry is at most a session timeout after the victim's last
		// renewal; the next lease round takes it. The slack covers one
		// round's Redis and Kinesis calls on a loaded machine.
		if limit := testSession + testHeartbeat + 500*time.Millisecond; d > limit {
			t.Errorf("shard %s taken over %v after the crash, want ≤ %v", s, d, limit)
		}
	}
	if redelivered == 0 {
		t.Fatal("no record delivered by the victim after its last checkpoint was delivered again")
	}
}

// A zombie whose lease was taken (it paused, its heartbeats never reached
// Redis) gets ErrLeaseLost from its next checkpoint, and the new owner's
// checkpoint is unchanged.
func TestConsumerZombieCheckpointIsFenced(t *testing.T) {
	env := harness.Kinesis(t)
	rc := redisClient(t)
	stream := env.NewStream(t, 1)
	app := harness.UniqueName(t)
	entries, _ := jsonEntries(t, "z", 100, 5)
	seqs := putEntries(t, env, stream, entries)
	const shard = "shardId-000000000000"

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zstore := &frozen{Store: redisStore(t, rc, app, stream, "zombie")}
	var zerrs errorLog
	zombie := newConsumer(t, env, stream, shards.Checkpointer(zstore), shards.ErrorCallback(zerrs.add),
		shards.LeaseInterval(testHeartbeat), shards.CheckpointInterval(time.Hour))
	paused := make(chan struct{})
	resume := make(chan struct{})
	zdone := make(chan int)
	go func() {
		n := 0
		for _, err := range zombie.Records(ctx) {
			if err != nil {
				t.Error(err)
				break
			}
			n++
			if n == 50 {
				// Pause, as in a long GC or a stalled VM; the heartbeats
				// are lost meanwhile.
				zstore.freeze.Store(true)
				close(paused)
				<-resume
				break
			}
		}
		zdone <- n
	}()
	select {
	case <-paused:
	case <-ctx.Done():
		t.Fatal("zombie did not read 50 records")
	}

	nstore := redisStore(t, rc, app, stream, "new")
	newOwner := newConsumer(t, env, stream, shards.Checkpointer(nstore), shards.LeaseInterval(testHeartbeat))
	got := collectN(t, ctx, newOwner, 100) // the zombie never checkpointed
	if got[99].SequenceNumber != seqs[99] {
		t.Fatalf("new owner's last record %s, want %s", got[99].SequenceNumber, seqs[99])
	}
	want, err := nstore.Get(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	if want.SequenceNumber != seqs[99] || !want.Complete {
		t.Fatalf("new owner's checkpoint %+v, want complete at %s", want, seqs[99])
	}

	// The zombie wakes up and stops: its final checkpoint (record 50) is
	// refused.
	close(resume)
	if n := <-zdone; n != 50 {
		t.Fatalf("zombie read %d records, want 50", n)
	}
	if !zstore.sawLost.Load() {
		t.Fatalf("zombie's checkpoint was not refused with ErrLeaseLost; its errors: %v", zerrs.all())
	}
	lost := false
	for _, err := range zerrs.all() {
		lost = lost || errors.Is(err, checkpoint.ErrLeaseLost)
	}
	if !lost {
		t.Fatalf("zombie's error callback saw no ErrLeaseLost: %v", zerrs.all())
	}
	after, err := nstore.Get(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	if after != want {
		t.Fatalf("checkpoint changed by the zombie: %+v, want %+v", after, want)
	}
}

// frozen is a store whose heartbeats and renewals, once frozen, never
// reach the backend but look successful to the consumer, as for a process
// paused long enough to lose its lease. Checkpoints still go through.
type frozen struct {
	checkpoint.Store
	freeze  atomic.Bool
	sawLost atomic.Bool
	live    atomic.Int64
}

func (s *frozen) Heartbeat(ctx context.Context) (int, error) {
	if s.freeze.Load() {
		return int(s.live.Load()), nil
	}
	n, err := s.Store.Heartbeat(ctx)
	s.live.Store(int64(n))
	return n, err
}

func (s *frozen) Renew(ctx context.Context, l checkpoint.Lease) error {
	if s.freeze.Load() {
		return nil
	}
	return s.Store.Renew(ctx, l)
}

func (s *frozen) Take(ctx context.Context, shard string) (checkpoint.Lease, error) {
	if s.freeze.Load() {
		return checkpoint.Lease{}, checkpoint.ErrLeaseHeld
	}
	return s.Store.Take(ctx, shard)
}

func (s *frozen) Checkpoint(ctx context.Context, l checkpoint.Lease, c checkpoint.Checkpoint) error {
	err := s.Store.Checkpoint(ctx, l, c)
	if errors.Is(err, checkpoint.ErrLeaseLost) {
		s.sawLost.Store(true)
	}
	return err
}

// Seed acceptance case 5 through the consumer: two consumers started
// together on a one-shard stream: exactly one takes the shard, its
// heartbeats keep it for several session timeouts while records flow, and
// the other never reads it.
func TestConsumerOneWinnerKeepsLeaseByHeartbeat(t *testing.T) {
	env := harness.Kinesis(t)
	rc := redisClient(t)
	stream := env.NewStream(t, 1)
	app := harness.UniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := newLeaseLog()
	type delivery struct{ worker, id string }
	deliveries := make(chan delivery, 1024)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range []string{"p", "q"} {
		c := newConsumer(t, env, stream, shards.Checkpointer(redisStore(t, rc, app, stream, w)), log.hook(w),
			shards.LeaseInterval(testHeartbeat))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for rec, err := range c.Records(ctx) {
				if err != nil {
					t.Error(err)
					return
				}
				log.delivered(w, rec.ShardID)
				select {
				case deliveries <- delivery{w, decodeItem(t, rec).ID}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	close(start)
	// Write 10 records every 100 ms: 4.5 s, three session timeouts.
	entries, items := jsonEntries(t, "h", 450, 9)
	seen := map[string]int{}
	writer := time.NewTicker(100 * time.Millisecond)
	defer writer.Stop()
	next := 0
	for next < len(entries) || len(seen) < len(items) {
		select {
		case <-writer.C:
			if next < len(entries) {
				hi := min(next+10, len(entries))
				if _, err := tryPutEntries(ctx, env, stream, entries[next:hi]); err != nil {
					t.Fatal(err)
				}
				next = hi
			}
		case d := <-deliveries:
			seen[d.id]++
		case <-ctx.Done():
			t.Fatalf("%d of %d records delivered", len(seen), len(items))
		}
	}
	elapsed := time.Since(log.start)
	cancel()
	wg.Wait()
	log.check(t)
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.intervals) != 1 {
		t.Fatalf("the shard was acquired %d times (%v), want once", len(log.intervals), log.intervals)
	}
	if elapsed < 2*testSession {
		t.Fatalf("test ran %v, want more than two session timeouts", elapsed)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
}
