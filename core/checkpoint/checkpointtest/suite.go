package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// Config is what a case asks the factory for.
type Config struct {
	// SessionTimeout and HeartbeatFrequency every returned store uses.
	SessionTimeout     time.Duration
	HeartbeatFrequency time.Duration
	// Workers is how many stores to return: each with its own worker id,
	// all sharing one (application, stream) that no other case uses.
	Workers int
}

// Factory returns cfg.Workers stores as Config describes. It fails t when
// it cannot.
type Factory func(t *testing.T, cfg Config) []checkpoint.Store

// Option adjusts Run.
type Option func(*suite)

// WithTiming sets the session timeout and heartbeat frequency the cases use
// (default 1 s and 250 ms). Expiry cases take about one session timeout of
// the store's time each.
func WithTiming(session, heartbeat time.Duration) Option {
	return func(s *suite) { s.session, s.heartbeat = session, heartbeat }
}

// WithWrap runs each case inside wrap, e.g. synctest.Test, so a store that
// reads time.Now (or a clock that follows it) runs the cases on fake time.
func WithWrap(wrap func(t *testing.T, f func(t *testing.T))) Option {
	return func(s *suite) { s.wrap = wrap }
}

// WithConcurrency sets how many workers race for each shard in the
// concurrent-take case (default 16) and over how many shards (default 8).
func WithConcurrency(workers, shards int) Option {
	return func(s *suite) { s.racers, s.raceShards = workers, shards }
}

type suite struct {
	factory            Factory
	session, heartbeat time.Duration
	wrap               func(t *testing.T, f func(t *testing.T))
	racers, raceShards int
}

type tcase struct {
	name string
	run  func(t *testing.T, s *suite)
}

var cases = []tcase{
	{"WorkerIDsDistinct", testWorkerIDs},
	{"Timing", testTiming},
	{"TakeFree", testTakeFree},
	{"TakeHeld", testTakeHeld},
	{"TakeOwnAgain", testTakeOwnAgain},
	{"TakeExpired", testTakeExpired},
	{"RenewKeepsLease", testRenewKeepsLease},
	{"RenewAfterExpiryUntaken", testRenewExpiredUntaken},
	{"FencingCounterIncrements", testFencing},
	{"ZombieAfterExpiry", testZombieAfterExpiry},
	{"ZombieAfterRelease", testZombieAfterRelease},
	{"CheckpointNeverBackwards", testNeverBackwards},
	{"FinishedPersists", testFinished},
	{"ReleaseKeepsCheckpoint", testReleaseKeeps},
	{"GetUnknownShard", testGetUnknown},
	{"InvalidCheckpoint", testInvalid},
	{"LeasesListsOwners", testLeases},
	{"HeartbeatLiveWorkers", testHeartbeat},
	{"BatchRenew", testBatchRenew},
	{"CanceledContext", testCanceled},
	{"ConcurrentTakes", testConcurrentTakes},
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, factory Factory, opts ...Option) {
	s := &suite{factory: factory, session: time.Second, heartbeat: 250 * time.Millisecond, racers: 16, raceShards: 8}
	for _, o := range opts {
		o(s)
	}
	if s.heartbeat <= 0 || s.heartbeat >= s.session {
		t.Fatalf("checkpointtest: heartbeat %v must be positive and below the session timeout %v", s.heartbeat, s.session)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if s.wrap != nil {
				s.wrap(t, func(t *testing.T) { c.run(t, s) })
				return
			}
			c.run(t, s)
		})
	}
}

func (s *suite) stores(t *testing.T, n int) []checkpoint.Store {
	t.Helper()
	st := s.factory(t, Config{SessionTimeout: s.session, HeartbeatFrequency: s.heartbeat, Workers: n})
	if len(st) != n {
		t.Fatalf("factory returned %d stores, want %d", len(st), n)
	}
	return st
}

// poll is how often waiting cases ask the store again.
func (s *suite) poll() time.Duration { return s.session / 20 }

// slack is how late past a deadline a real store may still be judged on time.
func (s *suite) slack() time.Duration { return s.session/2 + 250*time.Millisecond }

// clockTolerance covers a store that keeps milliseconds.
const clockTolerance = 5 * time.Millisecond

// waitUntil calls cond every interval until it reports done, failing the
// test after within. It returns the time waited.
func waitUntil(t *testing.T, within, interval time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return time.Since(start)
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, within)
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-tick.C:
		}
	}
}

func take(t *testing.T, st checkpoint.Store, shard string) checkpoint.Lease {
	t.Helper()
	l, err := st.Take(t.Context(), shard)
	if err != nil {
		t.Fatalf("worker %s: take %s: %v", st.WorkerID(), shard, err)
	}
	if l.Shard != shard || l.Owner != st.WorkerID() {
		t.Fatalf("take %s by %s returned lease %+v", shard, st.WorkerID(), l)
	}
	return l
}

func write(t *testing.T, st checkpoint.Store, l checkpoint.Lease, c checkpoint.Checkpoint) {
	t.Helper()
	if err := st.Checkpoint(t.Context(), l, c); err != nil {
		t.Fatalf("worker %s: checkpoint %s %+v: %v", st.WorkerID(), l.Shard, c, err)
	}
}

func get(t *testing.T, st checkpoint.Store, shard string) checkpoint.Checkpoint {
	t.Helper()
	c, err := st.Get(t.Context(), shard)
	if err != nil {
		t.Fatalf("get %s: %v", shard, err)
	}
	return c
}

func leaseInfo(t *testing.T, st checkpoint.Store, shard string) checkpoint.LeaseInfo {
	t.Helper()
	all, err := st.Leases(t.Context())
	if err != nil {
		t.Fatalf("leases: %v", err)
	}
	for _, li := range all {
		if li.Shard == shard {
			return li
		}
	}
	t.Fatalf("leases: shard %s missing from %+v", shard, all)
	return checkpoint.LeaseInfo{}
}

// wantLeaseErr checks that err is a *LeaseError wrapping sentinel and, when
// owner is not "-", that it names owner as the holder.
func wantLeaseErr(t *testing.T, what string, err, sentinel error, owner string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got %v, want %v", what, err, sentinel)
	}
	var le *checkpoint.LeaseError
	if !errors.As(err, &le) {
		t.Fatalf("%s: %v is not a *checkpoint.LeaseError", what, err)
	}
	if owner != "-" && le.Owner != owner {
		t.Fatalf("%s: error names owner %q, want %q (%v)", what, le.Owner, owner, err)
	}
}

func testWorkerIDs(t *testing.T, s *suite) {
	st := s.stores(t, 4)
	seen := map[string]bool{}
	for _, x := range st {
		id := x.WorkerID()
		if id == "" || seen[id] {
			t.Fatalf("worker ids %q: empty or repeated", id)
		}
		seen[id] = true
	}
}

func testTiming(t *testing.T, s *suite) {
	st := s.stores(t, 1)[0]
	tm, ok := st.(checkpoint.Timing)
	if !ok {
		return // optional interface
	}
	if tm.SessionTimeout() != s.session || tm.HeartbeatFrequency() != s.heartbeat {
		t.Fatalf("timing %v/%v, want %v/%v", tm.SessionTimeout(), tm.HeartbeatFrequency(), s.session, s.heartbeat)
	}
}

func testTakeFree(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	l := take(t, a, "shardId-000000000000")
	if l.Counter < 1 || l.Checkpoint != (checkpoint.Checkpoint{}) {
		t.Fatalf("first take: %+v, want counter ≥ 1 and no checkpoint", l)
	}
	li := leaseInfo(t, a, l.Shard)
	if li.Owner != a.WorkerID() || li.Counter != l.Counter || !li.Live {
		t.Fatalf("leases after take: %+v", li)
	}
}

func testTakeHeld(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	l := take(t, a, "s")
	_, err := b.Take(t.Context(), "s")
	wantLeaseErr(t, "take of a held lease", err, checkpoint.ErrLeaseHeld, a.WorkerID())
	li := leaseInfo(t, a, "s")
	if li.Owner != a.WorkerID() || li.Counter != l.Counter {
		t.Fatalf("failed take changed the lease: %+v, want owner %s counter %d", li, a.WorkerID(), l.Counter)
	}
	if err := a.Renew(t.Context(), l); err != nil {
		t.Fatalf("owner renew after a failed take: %v", err)
	}
}

func testTakeOwnAgain(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	l1 := take(t, a, "s")
	write(t, a, l1, checkpoint.Checkpoint{SequenceNumber: "10", Complete: true})
	l2 := take(t, a, "s")
	if l2.Counter != l1.Counter+1 {
		t.Fatalf("retake counter %d, want %d", l2.Counter, l1.Counter+1)
	}
	if l2.Checkpoint.SequenceNumber != "10" {
		t.Fatalf("retake lost the checkpoint: %+v", l2.Checkpoint)
	}
	wantLeaseErr(t, "renew with the superseded lease", a.Renew(t.Context(), l1), checkpoint.ErrLeaseLost, a.WorkerID())
	if err := a.Renew(t.Context(), l2); err != nil {
		t.Fatalf("renew with the new lease: %v", err)
	}
}

// expire waits until b takes the shard a holds and returns b's lease and
// the time waited since a's take.
func (s *suite) expire(t *testing.T, b checkpoint.Store, shard string, since time.Time) checkpoint.Lease {
	t.Helper()
	var got checkpoint.Lease
	waitUntil(t, 3*s.session+2*time.Second, s.poll(), "take after expiry", func() bool {
		l, err := b.Take(t.Context(), shard)
		if err == nil {
			got = l
			return true
		}
		if !errors.Is(err, checkpoint.ErrLeaseHeld) {
			t.Fatalf("take while waiting for expiry: %v", err)
		}
		return false
	})
	waited := time.Since(since)
	if waited < s.session-clockTolerance {
		t.Fatalf("lease taken after %v, before the session timeout %v", waited, s.session)
	}
	if waited > s.session+s.poll()+s.slack() {
		t.Fatalf("lease taken after %v, long after the session timeout %v", waited, s.session)
	}
	return got
}

func testTakeExpired(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	start := time.Now()
	la := take(t, a, "s")
	write(t, a, la, checkpoint.Checkpoint{SequenceNumber: "42", Complete: true})
	lb := s.expire(t, b, "s", start)
	if lb.Counter != la.Counter+1 {
		t.Fatalf("counter after takeover %d, want %d", lb.Counter, la.Counter+1)
	}
	if lb.Checkpoint != (checkpoint.Checkpoint{SequenceNumber: "42", Complete: true}) {
		t.Fatalf("takeover lease carries %+v, want the previous owner's checkpoint", lb.Checkpoint)
	}
	if li := leaseInfo(t, a, "s"); li.Owner != b.WorkerID() || !li.Live {
		t.Fatalf("leases after takeover: %+v", li)
	}
}

func testRenewKeepsLease(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	l := take(t, a, "s")
	start := time.Now()
	hold := s.session + s.session/2
	lastRenew := time.Now()
	waitUntil(t, hold+s.session, s.heartbeat/2, "renewing past the session timeout", func() bool {
		if time.Since(lastRenew) >= s.heartbeat {
			if err := a.Renew(t.Context(), l); err != nil {
				t.Fatalf("renew after %v: %v", time.Since(start), err)
			}
			lastRenew = time.Now()
		}
		_, err := b.Take(t.Context(), "s")
		wantLeaseErr(t, fmt.Sprintf("take of a renewed lease after %v", time.Since(start)), err, checkpoint.ErrLeaseHeld, a.WorkerID())
		return time.Since(start) >= hold
	})
	if li := leaseInfo(t, a, "s"); li.Owner != a.WorkerID() || li.Counter != l.Counter || !li.Live {
		t.Fatalf("lease after renewals: %+v", li)
	}
}

// A lease past its expiry that nobody took is still its owner's: renew and
// checkpoint succeed and make it live again.
func testRenewExpiredUntaken(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	start := time.Now()
	l := take(t, a, "s")
	waited := waitUntil(t, 3*s.session+2*time.Second, s.poll(), "lease expiry", func() bool {
		return !leaseInfo(t, a, "s").Live
	})
	if waited < s.session-clockTolerance-s.poll() {
		t.Fatalf("lease not live after %v, before the session timeout %v", time.Since(start), s.session)
	}
	li := leaseInfo(t, a, "s")
	if li.Owner != a.WorkerID() || li.Counter != l.Counter {
		t.Fatalf("expired lease: %+v, want owner %s counter %d kept", li, a.WorkerID(), l.Counter)
	}
	write(t, a, l, checkpoint.Checkpoint{SequenceNumber: "7", Complete: true})
	if err := a.Renew(t.Context(), l); err != nil {
		t.Fatalf("renew of an expired, untaken lease: %v", err)
	}
	if li := leaseInfo(t, a, "s"); !li.Live || li.Counter != l.Counter {
		t.Fatalf("after renew: %+v", li)
	}
	_, err := b.Take(t.Context(), "s")
	wantLeaseErr(t, "take after the owner renewed", err, checkpoint.ErrLeaseHeld, a.WorkerID())
}

func testFencing(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	want := int64(0)
	for i, w := range []checkpoint.Store{a, b, a, b} {
		l := take(t, w, "s")
		if i == 0 {
			want = l.Counter
		} else if l.Counter != want {
			t.Fatalf("take %d: counter %d, want %d", i, l.Counter, want)
		}
		want++
		if err := w.Release(t.Context(), l); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	if li := leaseInfo(t, a, "s"); li.Counter != want-1 || li.Owner != "" || li.Live {
		t.Fatalf("after four takes and releases: %+v, want free with counter %d", li, want-1)
	}
}

func testZombieAfterExpiry(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	start := time.Now()
	old := take(t, a, "s")
	write(t, a, old, checkpoint.Checkpoint{SequenceNumber: "100", Complete: true})
	lb := s.expire(t, b, "s", start)
	newer := checkpoint.Checkpoint{SequenceNumber: "200", SubSequenceNumber: 3}
	write(t, b, lb, newer)

	wantLeaseErr(t, "zombie checkpoint", a.Checkpoint(t.Context(), old, checkpoint.Checkpoint{SequenceNumber: "300", Complete: true, Finished: true}), checkpoint.ErrLeaseLost, b.WorkerID())
	wantLeaseErr(t, "zombie renew", a.Renew(t.Context(), old), checkpoint.ErrLeaseLost, b.WorkerID())
	wantLeaseErr(t, "zombie release", a.Release(t.Context(), old), checkpoint.ErrLeaseLost, b.WorkerID())
	if c := get(t, b, "s"); c != newer {
		t.Fatalf("after zombie writes the checkpoint is %+v, want %+v", c, newer)
	}
	if li := leaseInfo(t, b, "s"); li.Owner != b.WorkerID() || li.Counter != lb.Counter || !li.Live {
		t.Fatalf("after zombie writes the lease is %+v, want %s's live lease %d", li, b.WorkerID(), lb.Counter)
	}
	if err := b.Renew(t.Context(), lb); err != nil {
		t.Fatalf("new owner renew: %v", err)
	}
}

func testZombieAfterRelease(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	old := take(t, a, "s")
	if err := a.Release(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	// Released and not yet retaken: the old lease is dead too.
	wantLeaseErr(t, "checkpoint after release", a.Checkpoint(t.Context(), old, checkpoint.Checkpoint{SequenceNumber: "5"}), checkpoint.ErrLeaseLost, "")
	lb := take(t, b, "s")
	wantLeaseErr(t, "zombie renew", a.Renew(t.Context(), old), checkpoint.ErrLeaseLost, b.WorkerID())
	wantLeaseErr(t, "zombie checkpoint", a.Checkpoint(t.Context(), old, checkpoint.Checkpoint{SequenceNumber: "9"}), checkpoint.ErrLeaseLost, b.WorkerID())
	wantLeaseErr(t, "zombie release", a.Release(t.Context(), old), checkpoint.ErrLeaseLost, b.WorkerID())
	if c := get(t, a, "s"); c != (checkpoint.Checkpoint{}) {
		t.Fatalf("zombie checkpoints were stored: %+v", c)
	}
	if li := leaseInfo(t, a, "s"); li.Owner != b.WorkerID() || li.Counter != lb.Counter || !li.Live {
		t.Fatalf("lease after zombie writes: %+v", li)
	}
}

func testNeverBackwards(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	l := take(t, a, "s")
	cp := func(seq string, sub int64, complete bool) checkpoint.Checkpoint {
		return checkpoint.Checkpoint{SequenceNumber: seq, SubSequenceNumber: sub, Complete: complete}
	}
	steps := []struct {
		write, want checkpoint.Checkpoint
	}{
		{cp("200", 0, true), cp("200", 0, true)},
		{cp("100", 0, true), cp("200", 0, true)},     // older sequence
		{cp("200", 5, false), cp("200", 0, true)},    // incomplete is behind complete
		{cp("1000", 2, false), cp("1000", 2, false)}, // numerically larger, lexically smaller
		{cp("999", 9, true), cp("1000", 2, false)},   // shorter is smaller
		{cp("1000", 1, false), cp("1000", 2, false)}, // older sub-sequence
		{cp("1000", 4, false), cp("1000", 4, false)}, // newer sub-sequence
		{cp("1000", 4, true), cp("1000", 4, true)},   // record complete
		{cp("", 0, false), cp("1000", 4, true)},      // empty
		{cp("49590338271490256608559692538361571095921575989136588898", 0, true), cp("49590338271490256608559692538361571095921575989136588898", 0, true)},
		{cp("49590338271490256608559692538361571095921575989136588897", 7, true), cp("49590338271490256608559692538361571095921575989136588898", 0, true)},
	}
	for i, st := range steps {
		write(t, a, l, st.write)
		if got := get(t, a, "s"); got != st.want {
			t.Fatalf("step %d: wrote %+v, stored %+v, want %+v", i, st.write, got, st.want)
		}
	}
	if err := a.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if l2 := take(t, a, "s"); l2.Checkpoint != steps[len(steps)-1].want {
		t.Fatalf("next take carries %+v", l2.Checkpoint)
	}
}

func testFinished(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	l := take(t, a, "parent")
	write(t, a, l, checkpoint.Checkpoint{SequenceNumber: "300", Complete: true})
	write(t, a, l, checkpoint.Checkpoint{SequenceNumber: "300", Complete: true, Finished: true})
	want := checkpoint.Checkpoint{SequenceNumber: "300", Complete: true, Finished: true}
	if c := get(t, a, "parent"); c != want {
		t.Fatalf("finished checkpoint stored as %+v", c)
	}
	// A later unfinished write (even a further one) never clears Finished.
	write(t, a, l, checkpoint.Checkpoint{SequenceNumber: "301", Complete: true})
	want.SequenceNumber = "301"
	if c := get(t, a, "parent"); c != want {
		t.Fatalf("after an unfinished write: %+v, want %+v", c, want)
	}
	if err := a.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if lb := take(t, b, "parent"); lb.Checkpoint != want {
		t.Fatalf("next owner sees %+v, want %+v", lb.Checkpoint, want)
	}
	// An empty shard closed before any record: finished with no sequence.
	le := take(t, a, "empty")
	write(t, a, le, checkpoint.Checkpoint{Finished: true})
	if c := get(t, b, "empty"); c != (checkpoint.Checkpoint{Finished: true}) {
		t.Fatalf("empty finished shard stored as %+v", c)
	}
}

func testReleaseKeeps(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	l := take(t, a, "s")
	c := checkpoint.Checkpoint{SequenceNumber: "777", SubSequenceNumber: 2}
	write(t, a, l, c)
	if err := a.Release(t.Context(), l); err != nil {
		t.Fatalf("release: %v", err)
	}
	li := leaseInfo(t, a, "s")
	if li.Owner != "" || li.Live || li.Checkpoint != c || li.Counter != l.Counter {
		t.Fatalf("released lease: %+v", li)
	}
	lb := take(t, b, "s") // at once: no waiting for expiry
	if lb.Checkpoint != c || lb.Counter != l.Counter+1 {
		t.Fatalf("take after release: %+v, want checkpoint %+v counter %d", lb, c, l.Counter+1)
	}
	if got := get(t, b, "s"); got != c {
		t.Fatalf("get after release: %+v", got)
	}
}

func testGetUnknown(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	c, err := a.Get(t.Context(), "shardId-never-seen")
	if err != nil || c != (checkpoint.Checkpoint{}) {
		t.Fatalf("get of an unknown shard: %+v, %v", c, err)
	}
	all, err := a.Leases(t.Context())
	if err != nil || len(all) != 0 {
		t.Fatalf("leases of a fresh stream: %+v, %v", all, err)
	}
}

func testInvalid(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	l := take(t, a, "s")
	for _, c := range []checkpoint.Checkpoint{
		{SequenceNumber: "12a"},
		{SequenceNumber: "-5"},
		{SequenceNumber: " 12"},
		{SequenceNumber: "12", SubSequenceNumber: -1},
		{SubSequenceNumber: 3},
	} {
		if err := a.Checkpoint(t.Context(), l, c); !errors.Is(err, checkpoint.ErrInvalidCheckpoint) {
			t.Fatalf("checkpoint %+v: got %v, want ErrInvalidCheckpoint", c, err)
		}
	}
	if c := get(t, a, "s"); c != (checkpoint.Checkpoint{}) {
		t.Fatalf("invalid checkpoints were stored: %+v", c)
	}
	if _, err := a.Take(t.Context(), ""); err == nil {
		t.Fatal("take of an empty shard id succeeded")
	}
}

func testLeases(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	before := time.Now()
	l0 := take(t, a, "shard-0")
	l1 := take(t, a, "shard-1")
	l2 := take(t, b, "shard-2")
	write(t, b, l2, checkpoint.Checkpoint{SequenceNumber: "12", Complete: true})
	if err := a.Release(t.Context(), l1); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	all, err := b.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("leases: %+v, want 3", all)
	}
	want := []struct {
		shard, owner string
		counter      int64
		live         bool
		cp           checkpoint.Checkpoint
	}{
		{"shard-0", a.WorkerID(), l0.Counter, true, checkpoint.Checkpoint{}},
		{"shard-1", "", l1.Counter, false, checkpoint.Checkpoint{}},
		{"shard-2", b.WorkerID(), l2.Counter, true, checkpoint.Checkpoint{SequenceNumber: "12", Complete: true}},
	}
	for i, w := range want {
		li := all[i]
		if li.Shard != w.shard || li.Owner != w.owner || li.Counter != w.counter || li.Live != w.live || li.Checkpoint != w.cp {
			t.Fatalf("leases[%d] = %+v, want %+v", i, li, w)
		}
		if w.live {
			// Expires is the store's clock; a local store and this test
			// share a host, so a coarse bound holds.
			lo, hi := before.Add(s.session-time.Second), after.Add(s.session+time.Second)
			if li.Expires.Before(lo) || li.Expires.After(hi) {
				t.Fatalf("leases[%d].Expires = %v, want about %v after the take", i, li.Expires, s.session)
			}
		}
	}
}

func testHeartbeat(t *testing.T, s *suite) {
	st := s.stores(t, 3)
	a, b, c := st[0], st[1], st[2]
	for i, w := range st {
		n, err := w.Heartbeat(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n != i+1 {
			t.Fatalf("heartbeat %d: %d live workers, want %d", i, n, i+1)
		}
	}
	start := time.Now()
	var live int
	waited := waitUntil(t, 3*s.session+2*time.Second, s.heartbeat, "a silent worker leaves the registry", func() bool {
		var err error
		if _, err = b.Heartbeat(t.Context()); err != nil {
			t.Fatal(err)
		}
		if live, err = a.Heartbeat(t.Context()); err != nil {
			t.Fatal(err)
		}
		return live == 2
	})
	if waited < s.session-s.heartbeat-clockTolerance || waited > s.session+s.heartbeat+s.slack() {
		t.Fatalf("silent worker %s dropped after %v, want about the session timeout %v", c.WorkerID(), time.Since(start), s.session)
	}
	if n, err := c.Heartbeat(t.Context()); err != nil || n != 3 {
		t.Fatalf("returning worker: %d live, %v; want 3", n, err)
	}
	if lv, ok := b.(checkpoint.Leaver); ok {
		if err := lv.Leave(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Heartbeat(t.Context()); err != nil || n != 2 {
			t.Fatalf("after a worker left: %d live, %v; want 2", n, err)
		}
	}
}

func testBatchRenew(t *testing.T, s *suite) {
	st := s.stores(t, 2)
	a, b := st[0], st[1]
	br, ok := a.(checkpoint.BatchRenewer)
	if !ok {
		return // optional interface
	}
	if errs, err := br.RenewAll(t.Context(), nil); err != nil || len(errs) != 0 {
		t.Fatalf("renew of no leases: %v, %v", errs, err)
	}
	l0 := take(t, a, "s0")
	l1 := take(t, a, "s1")
	if err := a.Release(t.Context(), l1); err != nil {
		t.Fatal(err)
	}
	lb := take(t, b, "s1")
	l2 := take(t, a, "s2")
	errs, err := br.RenewAll(t.Context(), []checkpoint.Lease{l0, l1, l2})
	if err != nil || len(errs) != 3 {
		t.Fatalf("renew all: %v, %v", errs, err)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("renew all of owned leases: %v", errs)
	}
	wantLeaseErr(t, "renew all of a lost lease", errs[1], checkpoint.ErrLeaseLost, b.WorkerID())
	if _, err := b.Heartbeat(t.Context()); err != nil {
		t.Fatal(err)
	}
	live, errs, err := br.HeartbeatAll(t.Context(), []checkpoint.Lease{l0, l2})
	if err != nil || live != 2 || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
		t.Fatalf("heartbeat all: live %d, errs %v, err %v; want 2 live and no errors", live, errs, err)
	}
	// Renewal keeps the leases: b still cannot take them, and its own lease
	// is untouched.
	if _, err := b.Take(t.Context(), "s0"); !errors.Is(err, checkpoint.ErrLeaseHeld) {
		t.Fatalf("take of a batch-renewed lease: %v", err)
	}
	if li := leaseInfo(t, a, "s1"); li.Owner != b.WorkerID() || li.Counter != lb.Counter {
		t.Fatalf("lost lease after renew all: %+v", li)
	}
	// Renewing past the session timeout keeps every lease.
	start := time.Now()
	waitUntil(t, 3*s.session, s.heartbeat, "batch renewals past the session timeout", func() bool {
		_, errs, err := br.HeartbeatAll(t.Context(), []checkpoint.Lease{l0, l2})
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("heartbeat all after %v: %v %v", time.Since(start), errs, err)
		}
		return time.Since(start) > s.session+s.heartbeat
	})
	for _, sh := range []string{"s0", "s2"} {
		if _, err := b.Take(t.Context(), sh); !errors.Is(err, checkpoint.ErrLeaseHeld) {
			t.Fatalf("take of %s after batch renewals: %v", sh, err)
		}
	}
}

func testCanceled(t *testing.T, s *suite) {
	a := s.stores(t, 1)[0]
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.Take(ctx, "s"); !errors.Is(err, context.Canceled) {
		t.Fatalf("take with a canceled context: %v", err)
	}
	if _, err := a.Get(ctx, "s"); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a canceled context: %v", err)
	}
	if _, err := a.Heartbeat(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("heartbeat with a canceled context: %v", err)
	}
	if _, err := a.Leases(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("leases with a canceled context: %v", err)
	}
}

func testConcurrentTakes(t *testing.T, s *suite) {
	st := s.stores(t, s.racers)
	type result struct {
		worker string
		lease  checkpoint.Lease
		err    error
	}
	results := make([][]result, s.raceShards)
	var mu sync.Mutex
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for sh := 0; sh < s.raceShards; sh++ {
		shard := fmt.Sprintf("shard-%d", sh)
		for _, w := range st {
			wg.Go(func() {
				<-startGun
				l, err := w.Take(t.Context(), shard)
				mu.Lock()
				results[sh] = append(results[sh], result{w.WorkerID(), l, err})
				mu.Unlock()
			})
		}
	}
	close(startGun)
	wg.Wait()
	for sh, rs := range results {
		var winners []result
		for _, r := range rs {
			if r.err == nil {
				winners = append(winners, r)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("shard-%d: %d winners, want exactly 1: %+v", sh, len(winners), winners)
		}
		win := winners[0]
		for _, r := range rs {
			if r.err != nil {
				wantLeaseErr(t, fmt.Sprintf("shard-%d loser %s", sh, r.worker), r.err, checkpoint.ErrLeaseHeld, win.worker)
			}
		}
		if li := leaseInfo(t, st[0], fmt.Sprintf("shard-%d", sh)); li.Owner != win.worker || li.Counter != win.lease.Counter || li.Counter != 1 {
			t.Fatalf("shard-%d after the race: %+v, winner %+v", sh, li, win)
		}
	}
}
