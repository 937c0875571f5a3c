package simulator

import (
	"fmt"
	"sync"
	"time"
)

// MiB is 2^20 bytes.
const MiB = 1 << 20

// Limits are the per-shard throughput limits the simulator enforces. A zero
// rate disables that limit.
type Limits struct {
	WriteBytesPerSec   float64 // data + partition key bytes written per second (AWS: 1 MiB)
	WriteRecordsPerSec float64 // records written per second (AWS: 1,000)
	ReadCallsPerSec    float64 // GetRecords calls per second (AWS: 5)
	ReadBytesPerSec    float64 // bytes returned by GetRecords per second (AWS: 2 MiB)
	// Burst is how much of each rate a shard may use at once: every bucket
	// holds at most rate×Burst and starts full. Zero means one second.
	Burst time.Duration
}

// DefaultLimits returns the AWS limits of a provisioned shard.
func DefaultLimits() Limits {
	return Limits{
		WriteBytesPerSec:   MiB,
		WriteRecordsPerSec: 1000,
		ReadCallsPerSec:    5,
		ReadBytesPerSec:    2 * MiB,
		Burst:              time.Second,
	}
}

// validate checks the limits and fills in the default burst.
func (l Limits) validate() (Limits, error) {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"WriteBytesPerSec", l.WriteBytesPerSec},
		{"WriteRecordsPerSec", l.WriteRecordsPerSec},
		{"ReadCallsPerSec", l.ReadCallsPerSec},
		{"ReadBytesPerSec", l.ReadBytesPerSec},
	} {
		if f.v < 0 || f.v != f.v {
			return l, fmt.Errorf("simulator: Limits.%s = %v, want >= 0 (0 disables the limit)", f.name, f.v)
		}
	}
	if l.Burst < 0 {
		return l, fmt.Errorf("simulator: Limits.Burst = %v, want >= 0 (0 means 1s)", l.Burst)
	}
	if l.Burst == 0 {
		l.Burst = time.Second
	}
	return l, nil
}

// Clock tells the simulator the time.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// FakeClock is a Clock that moves only when told to. It is safe for
// concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// bucket is a token bucket: it refills at rate tokens per second up to cap.
// A zero rate means unlimited. Tokens may go negative when a cost is charged
// after the fact (read bytes); the debt is repaid by refilling.
type bucket struct {
	rate, cap, tokens float64
	last              time.Time
}

func newBucket(rate float64, burst time.Duration, now time.Time) bucket {
	c := rate * burst.Seconds()
	return bucket{rate: rate, cap: c, tokens: c, last: now}
}

func (b *bucket) refill(now time.Time) {
	if b.rate == 0 {
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens += b.rate * d.Seconds()
		if b.tokens > b.cap {
			b.tokens = b.cap
		}
		b.last = now
	}
}

// has reports whether n tokens are available (always when unlimited).
func (b *bucket) has(n float64) bool { return b.rate == 0 || b.tokens >= n }

// take removes n tokens (possibly going into debt).
func (b *bucket) take(n float64) {
	if b.rate != 0 {
		b.tokens -= n
	}
}

// inDebt reports whether more was charged than the bucket held.
func (b *bucket) inDebt() bool { return b.rate != 0 && b.tokens < 0 }
