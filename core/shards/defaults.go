package shards

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/records"
)

// defaultProcessor is JSON, one item per Kinesis record (async-kinesis'
// default).
func defaultProcessor() records.Processor { return records.JSONProcessor() }

// newDefaultStore is an in-memory lease store for a single process.
func newDefaultStore(app, stream string) checkpoint.Store {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &memStore{id: host + "-" + hex.EncodeToString(b[:]), leases: map[string]*memLease{}}
}

type memLease struct {
	owner   string
	counter int64
	expires time.Time
	cp      checkpoint.Checkpoint
}

// memStore keeps leases in process memory; its worker is the only one.
type memStore struct {
	id     string
	mu     sync.Mutex
	leases map[string]*memLease
}

const memSession = 60 * time.Second

func (m *memStore) WorkerID() string                           { return m.id }
func (m *memStore) Heartbeat(ctx context.Context) (int, error) { return 1, ctx.Err() }

func (m *memStore) Take(ctx context.Context, shard string) (checkpoint.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.leases[shard]
	if l == nil {
		l = &memLease{}
		m.leases[shard] = l
	}
	if l.owner != "" && l.owner != m.id && time.Now().Before(l.expires) {
		return checkpoint.Lease{}, checkpoint.ErrLeaseHeld
	}
	l.owner, l.counter, l.expires = m.id, l.counter+1, time.Now().Add(memSession)
	return checkpoint.Lease{Shard: shard, Owner: m.id, Counter: l.counter, Checkpoint: l.cp}, nil
}

func (m *memStore) owned(l checkpoint.Lease) (*memLease, error) {
	ml := m.leases[l.Shard]
	if ml == nil || ml.owner != l.Owner || ml.counter != l.Counter {
		return nil, checkpoint.ErrLeaseLost
	}
	return ml, nil
}

func (m *memStore) Renew(ctx context.Context, l checkpoint.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ml, err := m.owned(l)
	if err != nil {
		return err
	}
	ml.expires = time.Now().Add(memSession)
	return nil
}

func (m *memStore) Checkpoint(ctx context.Context, l checkpoint.Lease, c checkpoint.Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ml, err := m.owned(l)
	if err != nil {
		return err
	}
	if !ml.cp.Finished {
		ml.cp = c
	}
	return nil
}

func (m *memStore) Release(ctx context.Context, l checkpoint.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ml, err := m.owned(l)
	if err != nil {
		return err
	}
	ml.owner, ml.expires = "", time.Time{}
	return nil
}

func (m *memStore) Get(ctx context.Context, shard string) (checkpoint.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.leases[shard]; l != nil {
		return l.cp, nil
	}
	return checkpoint.Checkpoint{}, nil
}

func (m *memStore) Leases(ctx context.Context) ([]checkpoint.LeaseInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]checkpoint.LeaseInfo, 0, len(m.leases))
	for s, l := range m.leases {
		out = append(out, checkpoint.LeaseInfo{Shard: s, Owner: l.owner, Counter: l.counter, Expires: l.expires, Checkpoint: l.cp})
	}
	return out, nil
}
