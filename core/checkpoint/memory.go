package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryBackend holds leases, checkpoints and the worker registry in process
// memory. It is the default store: one process, nothing survives a restart.
// Several stores (one per worker, see Store) share one backend, so lease
// hand-over between consumers in one process behaves as with Redis.
// A MemoryBackend is safe for concurrent use.
type MemoryBackend struct {
	now                func() time.Time
	session, heartbeat time.Duration

	mu      sync.Mutex
	streams map[streamKey]*memStream
}

type streamKey struct{ app, stream string }

type memStream struct {
	shards  map[string]*memLease
	workers map[string]time.Time // worker id -> registration expiry
}

type memLease struct {
	owner   string
	counter int64
	expires time.Time
	cp      Checkpoint
}

// NewMemoryBackend returns an empty backend. WithClock sets its clock;
// WithSessionTimeout and WithHeartbeatFrequency set the defaults of its
// stores. WithWorkerID is refused (an identity belongs to one store).
func NewMemoryBackend(opts ...Option) (*MemoryBackend, error) {
	c := config{session: DefaultSessionTimeout, heartbeat: DefaultHeartbeatFrequency, now: time.Now}
	if err := c.apply(opts); err != nil {
		return nil, err
	}
	if c.workerIDSet {
		return nil, fmt.Errorf("checkpoint: WithWorkerID(%q) applies to a store, not to a memory backend: %w", c.workerID, ErrInvalidOption)
	}
	if err := checkTiming(c.session, c.heartbeat); err != nil {
		return nil, err
	}
	return &MemoryBackend{now: c.now, session: c.session, heartbeat: c.heartbeat, streams: map[streamKey]*memStream{}}, nil
}

// Store returns a store for one worker on (app, stream). Options override
// the backend's session timeout and heartbeat frequency and set the worker
// id (default DefaultWorkerID()); WithClock is refused.
func (b *MemoryBackend) Store(app, stream string, opts ...Option) (*Memory, error) {
	if app == "" || stream == "" {
		return nil, fmt.Errorf("checkpoint: memory store needs an application (%q) and a stream (%q): %w", app, stream, ErrInvalidOption)
	}
	c := config{session: b.session, heartbeat: b.heartbeat}
	if err := c.apply(opts); err != nil {
		return nil, err
	}
	if c.nowSet {
		return nil, fmt.Errorf("checkpoint: WithClock applies to a memory backend, not to one of its stores: %w", ErrInvalidOption)
	}
	if err := checkTiming(c.session, c.heartbeat); err != nil {
		return nil, err
	}
	if !c.workerIDSet {
		c.workerID = DefaultWorkerID()
	}
	return &Memory{b: b, key: streamKey{app, stream}, id: c.workerID, session: c.session, heartbeat: c.heartbeat}, nil
}

// NewMemory returns a store on a backend of its own: the usual choice for
// a single consumer. WithClock applies to that backend, the other options to
// the store.
func NewMemory(app, stream string, opts ...Option) (*Memory, error) {
	var c config
	if err := c.apply(opts); err != nil {
		return nil, err
	}
	var bopts []Option
	if c.nowSet {
		bopts = append(bopts, WithClock(c.now))
	}
	b, err := NewMemoryBackend(bopts...)
	if err != nil {
		return nil, err
	}
	var sopts []Option
	if c.sessionSet {
		sopts = append(sopts, WithSessionTimeout(c.session))
	}
	if c.heartbeatSet {
		sopts = append(sopts, WithHeartbeatFrequency(c.heartbeat))
	}
	if c.workerIDSet {
		sopts = append(sopts, WithWorkerID(c.workerID))
	}
	return b.Store(app, stream, sopts...)
}

// Memory is one worker's view of a MemoryBackend. It implements Store,
// Timing, BatchRenewer and Leaver, and is safe for concurrent use.
type Memory struct {
	b                  *MemoryBackend
	key                streamKey
	id                 string
	session, heartbeat time.Duration
}

var (
	_ Store        = (*Memory)(nil)
	_ Timing       = (*Memory)(nil)
	_ BatchRenewer = (*Memory)(nil)
	_ Leaver       = (*Memory)(nil)
)

// WorkerID implements Store.
func (m *Memory) WorkerID() string { return m.id }

// SessionTimeout implements Timing.
func (m *Memory) SessionTimeout() time.Duration { return m.session }

// HeartbeatFrequency implements Timing.
func (m *Memory) HeartbeatFrequency() time.Duration { return m.heartbeat }

// stream returns the stream's state; the caller holds b.mu.
func (m *Memory) stream() *memStream {
	s := m.b.streams[m.key]
	if s == nil {
		s = &memStream{shards: map[string]*memLease{}, workers: map[string]time.Time{}}
		m.b.streams[m.key] = s
	}
	return s
}

// Heartbeat implements Store.
func (m *Memory) Heartbeat(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	return m.beatLocked(), nil
}

func (m *Memory) beatLocked() int {
	now := m.b.now()
	s := m.stream()
	s.workers[m.id] = now.Add(m.session)
	for id, exp := range s.workers {
		if !now.Before(exp) {
			delete(s.workers, id)
		}
	}
	return len(s.workers)
}

// Leave implements Leaver.
func (m *Memory) Leave(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	delete(m.stream().workers, m.id)
	return nil
}

// Take implements Store.
func (m *Memory) Take(ctx context.Context, shard string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	if shard == "" {
		return Lease{}, fmt.Errorf("checkpoint: take: empty shard id: %w", ErrInvalidCheckpoint)
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	s := m.stream()
	l := s.shards[shard]
	if l == nil {
		l = &memLease{}
		s.shards[shard] = l
	}
	now := m.b.now()
	if l.owner != "" && l.owner != m.id && now.Before(l.expires) {
		return Lease{}, &LeaseError{Op: "take", Shard: shard, Owner: l.owner, Counter: l.counter, Err: ErrLeaseHeld}
	}
	l.owner = m.id
	l.counter++
	l.expires = now.Add(m.session)
	return Lease{Shard: shard, Owner: m.id, Counter: l.counter, Checkpoint: l.cp}, nil
}

// owned returns the shard's lease when the presented lease still holds it;
// the caller holds b.mu.
func (m *Memory) owned(op string, lease Lease) (*memLease, error) {
	l := m.stream().shards[lease.Shard]
	if l == nil || l.owner != m.id || lease.Owner != m.id || l.counter != lease.Counter {
		e := &LeaseError{Op: op, Shard: lease.Shard, Held: lease.Counter, Err: ErrLeaseLost}
		if l != nil {
			e.Owner, e.Counter = l.owner, l.counter
		}
		return nil, e
	}
	return l, nil
}

// Renew implements Store. A lease past its expiry that no other worker has
// taken is still the caller's and is renewed.
func (m *Memory) Renew(ctx context.Context, lease Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	return m.renewLocked(lease)
}

func (m *Memory) renewLocked(lease Lease) error {
	l, err := m.owned("renew", lease)
	if err != nil {
		return err
	}
	l.expires = m.b.now().Add(m.session)
	return nil
}

// RenewAll implements BatchRenewer.
func (m *Memory) RenewAll(ctx context.Context, leases []Lease) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	return m.renewAllLocked(leases), nil
}

func (m *Memory) renewAllLocked(leases []Lease) []error {
	errs := make([]error, len(leases))
	for i, l := range leases {
		errs[i] = m.renewLocked(l)
	}
	return errs
}

// HeartbeatAll implements BatchRenewer.
func (m *Memory) HeartbeatAll(ctx context.Context, leases []Lease) (int, []error, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	live := m.beatLocked()
	return live, m.renewAllLocked(leases), nil
}

// Checkpoint implements Store.
func (m *Memory) Checkpoint(ctx context.Context, lease Lease, c Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.Validate(lease.Shard); err != nil {
		return err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	l, err := m.owned("checkpoint", lease)
	if err != nil {
		return err
	}
	l.cp = Merge(l.cp, c)
	return nil
}

// Release implements Store.
func (m *Memory) Release(ctx context.Context, lease Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	l, err := m.owned("release", lease)
	if err != nil {
		return err
	}
	l.owner, l.expires = "", time.Time{}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, shard string) (Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	if l := m.stream().shards[shard]; l != nil {
		return l.cp, nil
	}
	return Checkpoint{}, nil
}

// Leases implements Store; the list is sorted by shard id.
func (m *Memory) Leases(ctx context.Context) ([]LeaseInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	now := m.b.now()
	s := m.stream()
	out := make([]LeaseInfo, 0, len(s.shards))
	for id, l := range s.shards {
		out = append(out, LeaseInfo{
			Shard: id, Owner: l.owner, Counter: l.counter, Expires: l.expires,
			Live: l.owner != "" && now.Before(l.expires), Checkpoint: l.cp,
		})
	}
	slices.SortFunc(out, func(a, b LeaseInfo) int { return strings.Compare(a.Shard, b.Shard) })
	return out, nil
}
