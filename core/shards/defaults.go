package shards

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/records"
)

// defaultProcessor is JSON, one item per Kinesis record.
func defaultProcessor() records.Processor {
	return records.Processor{Name: "json", Serializer: jsonSerializer{}, Aggregator: simpleAggregator{}}
}

type jsonSerializer struct{}

func (jsonSerializer) Serialize(_ context.Context, items []any) ([][]byte, error) {
	out := make([][]byte, len(items))
	var errs records.ItemErrors
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			errs = append(errs, records.ItemError{Index: i, Err: err})
			continue
		}
		out[i] = b
	}
	if errs != nil {
		return out, errs
	}
	return out, nil
}

func (jsonSerializer) Deserialize(_ context.Context, data [][]byte) ([]any, error) {
	out := make([]any, len(data))
	var errs records.ItemErrors
	for i, d := range data {
		if err := json.Unmarshal(d, &out[i]); err != nil {
			errs = append(errs, records.ItemError{Index: i, Err: err})
		}
	}
	if errs != nil {
		return out, errs
	}
	return out, nil
}

type simpleAggregator struct{}

func (simpleAggregator) Aggregate(_ context.Context, in []records.UserRecord, maxSize int) ([]records.Aggregated, error) {
	out := make([]records.Aggregated, 0, len(in))
	var errs records.ItemErrors
	for i, r := range in {
		if len(r.Data)+len(r.PartitionKey) > maxSize {
			errs = append(errs, records.ItemError{Index: i, Err: errTooBig})
			continue
		}
		out = append(out, records.Aggregated{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data, Count: 1})
	}
	if errs != nil {
		return out, errs
	}
	return out, nil
}

func (simpleAggregator) Deaggregate(_ context.Context, in []records.Record) ([]records.Record, error) {
	return in, nil
}

func (simpleAggregator) SizeAlone(r records.UserRecord) int { return len(r.Data) + len(r.PartitionKey) }

var errTooBig = errorString("record larger than the size limit")

type errorString string

func (e errorString) Error() string { return string(e) }

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
