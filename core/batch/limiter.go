package batch

import (
	"slices"
	"time"
)

// window is the span the per-shard limits apply to.
const window = time.Second

// maxArrivalDelay bounds how long after it was sent a call is assumed to
// reach Kinesis (see limiter).
const maxArrivalDelay = 100 * time.Millisecond

// AIMD bounds: a throttle multiplies a shard's share of its limits by
// aimdDecrease (never below aimdFloor); every call to the shard without a
// throttle adds aimdIncrease back, up to 1.
const (
	aimdDecrease = 0.7
	aimdIncrease = 0.05
	aimdFloor    = 0.1
)

// usage is what one call sent to a shard. It counts against the shard's
// limits from the moment the call is made until one window after it
// reached Kinesis (until is zero while it is in flight).
type usage struct {
	sent, until    time.Time
	records, bytes int
}

// limiter is one shard's sliding-window rate limit on records and bytes.
// Kinesis counts a record when the call arrives, somewhere between the
// moment it was sent and the moment it returned. Each call counts until one
// second after the earlier of its return and its sending plus
// maxArrivalDelay, so that, seen from Kinesis, no one-second window holds
// more than factor × the limits as long as calls arrive within
// maxArrivalDelay of being sent, while a slow response (Kinesis works after
// counting) costs at most maxArrivalDelay of each second. Unlike a token bucket it never lets a full burst
// follow a full second (async-kinesis let 1.9 MB through in under a second
// against a 1 MB/s limit). Only the producer's goroutine uses it.
type limiter struct {
	maxRecords, maxBytes int
	factor               float64
	log                  []*usage
	records, bytes       int // sums over log
}

func newLimiter(maxRecords, maxBytes int) *limiter {
	return &limiter{maxRecords: maxRecords, maxBytes: maxBytes, factor: 1}
}

func (l *limiter) expire(now time.Time) {
	kept := l.log[:0]
	for _, u := range l.log {
		if !u.until.IsZero() && !u.until.After(now) {
			l.records -= u.records
			l.bytes -= u.bytes
			continue
		}
		kept = append(kept, u)
	}
	clear(l.log[len(kept):])
	l.log = kept
}

func (l *limiter) caps() (int, int) {
	r := int(float64(l.maxRecords) * l.factor)
	b := int(float64(l.maxBytes) * l.factor)
	return max(r, 1), max(b, 1)
}

// budget is what the shard may still send now.
func (l *limiter) budget(now time.Time) (records, bytes int) {
	l.expire(now)
	r, b := l.caps()
	return r - l.records, b - l.bytes
}

// fits reports whether one more entry of size bytes may go now, given the
// records and bytes already taken for the call being built. An entry
// larger than the byte limit goes alone into an empty window.
func (l *limiter) fits(takenRecords, takenBytes, size int) bool {
	r, b := l.caps()
	if l.records+takenRecords+1 > r {
		return false
	}
	if l.bytes+takenBytes+size > b {
		return l.records+takenRecords == 0 && l.bytes+takenBytes == 0
	}
	return true
}

// take records a call that starts now and returns its usage, to be passed
// to done when the call returns.
func (l *limiter) take(now time.Time, records, bytes int) *usage {
	u := &usage{sent: now, records: records, bytes: bytes}
	l.log = append(l.log, u)
	l.records += records
	l.bytes += bytes
	return u
}

// done starts the window of a call that returned at now.
func (l *limiter) done(u *usage, now time.Time) {
	arrived := u.sent.Add(maxArrivalDelay)
	if now.Before(arrived) {
		arrived = now
	}
	u.until = arrived.Add(window)
}

// readyAt is when one entry of size bytes will fit. ok is false when only
// the return of a call in flight can make room.
func (l *limiter) readyAt(now time.Time, size int) (at time.Time, ok bool) {
	l.expire(now)
	r, b := l.caps()
	fit := func(recs, bytes int) bool {
		return recs+1 <= r && (bytes+size <= b || (recs == 0 && bytes == 0))
	}
	recs, bytes := l.records, l.bytes
	if fit(recs, bytes) {
		return now, true
	}
	var ended []*usage
	for _, u := range l.log {
		if !u.until.IsZero() {
			ended = append(ended, u)
		}
	}
	slices.SortFunc(ended, func(a, b *usage) int { return a.until.Compare(b.until) })
	for _, u := range ended {
		recs -= u.records
		bytes -= u.bytes
		if fit(recs, bytes) {
			return u.until, true
		}
	}
	return time.Time{}, false
}

func (l *limiter) throttled() { l.factor = max(aimdFloor, l.factor*aimdDecrease) }

func (l *limiter) succeeded() { l.factor = min(1, l.factor+aimdIncrease) }
