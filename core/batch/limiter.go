package batch

import "time"

const window = time.Second

// AIMD bounds: a throttle multiplies a shard's share of its limits by
// aimdDecrease (never below aimdFloor); every call to the shard without a
// throttle adds aimdIncrease back, up to 1.
const (
	aimdDecrease = 0.7
	aimdIncrease = 0.05
	aimdFloor    = 0.1
)

type usage struct {
	at             time.Time
	records, bytes int
}

// limiter is one shard's sliding-window rate limit on records and bytes:
// within any window of one second, what it admits stays within
// factor × the limits. Unlike a token bucket it never lets a full burst
// follow a full second (async-kinesis let 1.9 MB through in under a second
// against a 1 MB/s limit). Only the producer's goroutine uses it.
type limiter struct {
	maxRecords, maxBytes int
	factor               float64
	log                  []usage // oldest first
	records, bytes       int     // sums over log
}

func newLimiter(maxRecords, maxBytes int) *limiter {
	return &limiter{maxRecords: maxRecords, maxBytes: maxBytes, factor: 1}
}

func (l *limiter) expire(now time.Time) {
	i := 0
	for i < len(l.log) && !l.log[i].at.Add(window).After(now) {
		l.records -= l.log[i].records
		l.bytes -= l.log[i].bytes
		i++
	}
	if i > 0 {
		l.log = append(l.log[:0], l.log[i:]...)
	}
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

// take records what was sent at now.
func (l *limiter) take(now time.Time, records, bytes int) {
	if records == 0 {
		return
	}
	l.log = append(l.log, usage{now, records, bytes})
	l.records += records
	l.bytes += bytes
}

// readyAt is when one entry of size bytes will fit.
func (l *limiter) readyAt(now time.Time, size int) time.Time {
	l.expire(now)
	r, b := l.caps()
	ok := func(recs, bytes int) bool {
		return recs+1 <= r && (bytes+size <= b || (recs == 0 && bytes == 0))
	}
	recs, bytes := l.records, l.bytes
	if ok(recs, bytes) {
		return now
	}
	for _, u := range l.log {
		recs -= u.records
		bytes -= u.bytes
		if ok(recs, bytes) {
			return u.at.Add(window)
		}
	}
	return now.Add(window)
}

func (l *limiter) throttled() { l.factor = max(aimdFloor, l.factor*aimdDecrease) }

func (l *limiter) succeeded() { l.factor = min(1, l.factor+aimdIncrease) }
