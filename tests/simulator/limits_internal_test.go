package simulator

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBucketRefillAndCap(t *testing.T) {
	b := newBucket(1000, time.Second, t0)
	if !b.has(1000) || b.has(1000.5) {
		t.Fatalf("fresh bucket holds %v, want 1000", b.tokens)
	}
	for range 1000 {
		b.take(1)
	}
	if b.has(1) {
		t.Fatalf("empty bucket still holds %v", b.tokens)
	}
	b.refill(t0.Add(time.Millisecond))
	if !b.has(1) || b.has(1.5) {
		t.Fatalf("after 1ms: %v tokens, want 1", b.tokens)
	}
	b.refill(t0.Add(10 * time.Second))
	if b.tokens != 1000 {
		t.Fatalf("after 10s: %v tokens, want the cap 1000", b.tokens)
	}
	b.refill(t0) // time going backwards changes nothing
	if b.tokens != 1000 || !b.last.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("backwards clock: %v tokens, last %v", b.tokens, b.last)
	}
}

func TestBucketBurstAndDebt(t *testing.T) {
	b := newBucket(10, 2*time.Second, t0)
	if b.cap != 20 || b.tokens != 20 {
		t.Fatalf("burst 2s: cap %v tokens %v, want 20", b.cap, b.tokens)
	}
	b.take(35)
	if !b.inDebt() {
		t.Fatal("15 tokens in debt, inDebt false")
	}
	b.refill(t0.Add(1400 * time.Millisecond))
	if !b.inDebt() {
		t.Fatalf("after 1.4s: %v tokens, want still in debt", b.tokens)
	}
	b.refill(t0.Add(1600 * time.Millisecond))
	if b.inDebt() {
		t.Fatalf("after 1.6s: %v tokens, want repaid", b.tokens)
	}
	u := newBucket(0, time.Second, t0)
	u.take(1e12)
	if !u.has(1e12) || u.inDebt() {
		t.Fatal("a zero rate must be unlimited")
	}
}

func TestLimitsValidate(t *testing.T) {
	l, err := Limits{WriteRecordsPerSec: 5}.validate()
	if err != nil || l.Burst != time.Second {
		t.Fatalf("zero burst: %v %v, want 1s", l.Burst, err)
	}
	for _, c := range []struct {
		l    Limits
		name string
	}{
		{Limits{WriteBytesPerSec: -1}, "WriteBytesPerSec"},
		{Limits{WriteRecordsPerSec: -1}, "WriteRecordsPerSec"},
		{Limits{ReadCallsPerSec: -1}, "ReadCallsPerSec"},
		{Limits{ReadBytesPerSec: -1}, "ReadBytesPerSec"},
		{Limits{Burst: -time.Second}, "Burst"},
	} {
		if _, err := c.l.validate(); err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%+v: error %v, want one naming %s", c.l, err, c.name)
		}
	}
	if _, err := New("http://127.0.0.1:1", Limits{ReadCallsPerSec: -2}); err == nil || !strings.Contains(err.Error(), "ReadCallsPerSec") {
		t.Fatalf("New with a bad limit: %v", err)
	}
	if _, err := New("127.0.0.1:1", DefaultLimits()); err == nil {
		t.Fatal("New accepted an endpoint without a scheme")
	}
	if _, err := New("http://127.0.0.1:1", DefaultLimits(), WithClock(nil)); err == nil || !strings.Contains(err.Error(), "WithClock") {
		t.Fatalf("New with a nil clock: %v", err)
	}
	if _, err := New("http://127.0.0.1:1", DefaultLimits(), WithMaxIterators(1)); err == nil || !strings.Contains(err.Error(), "WithMaxIterators") {
		t.Fatalf("New with 1 iterator: %v", err)
	}
}

func newUnit(t *testing.T, l Limits) (*Simulator, *FakeClock) {
	t.Helper()
	c := NewFakeClock(t0)
	s, err := New("http://127.0.0.1:1", l, WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestWriteWindows offers far more than the limit every 10ms for 5 simulated
// seconds and checks every 1s window: never more than rate×(burst+1s), and
// from the second second on the admitted rate equals the limit.
func TestWriteWindows(t *testing.T) {
	s, clock := newUnit(t, Limits{WriteRecordsPerSec: 1000, WriteBytesPerSec: 1 << 20})
	const step = 10 * time.Millisecond
	var perStep []int
	for range 500 {
		n := 0
		s.mu.Lock()
		for range 40 { // 4,000 records/s offered
			if v := s.judge("st", "shardId-0", 100); v.code == "" {
				n++
			} else if v.code != throttleCode || !v.limited {
				t.Fatalf("refusal %+v", v)
			}
		}
		s.mu.Unlock()
		perStep = append(perStep, n)
		clock.Advance(step)
	}
	if perStep[0] != 40 {
		t.Fatalf("first step admitted %d, want all 40 from the full bucket", perStep[0])
	}
	for i := 0; i+100 <= len(perStep); i++ {
		sum := 0
		for _, n := range perStep[i : i+100] {
			sum += n
		}
		if sum > 2000 {
			t.Fatalf("window at %v admitted %d > rate×(burst+1s)", time.Duration(i)*step, sum)
		}
		if i >= 100 && (sum < 990 || sum > 1010) {
			t.Fatalf("steady window at %v admitted %d, want 1000±10", time.Duration(i)*step, sum)
		}
	}
	st := s.Stats("st").Shard("shardId-0")
	total := 0
	for _, n := range perStep {
		total += n
	}
	if st.RefusedRecords != int64(500*40-total) || st.RefusedBytes != st.RefusedRecords*100 {
		t.Fatalf("stats %+v, admitted %d of %d", st, total, 500*40)
	}
}

// TestWriteByteLimit: bytes run out before records do.
func TestWriteByteLimit(t *testing.T) {
	s, clock := newUnit(t, Limits{WriteRecordsPerSec: 1000, WriteBytesPerSec: 10_000})
	s.mu.Lock()
	defer s.mu.Unlock()
	admitted := 0
	for range 20 {
		if s.judge("st", "a", 1000).code == "" {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("admitted %d records of 1000 B under 10,000 B/s, want 10", admitted)
	}
	// A small entry still fits? No: the bucket is empty.
	if s.judge("st", "a", 1).code == "" {
		t.Fatal("empty byte bucket admitted 1 byte")
	}
	clock.Advance(50 * time.Millisecond) // 500 B
	if s.judge("st", "a", 600).code == "" || s.judge("st", "a", 400).code != "" {
		t.Fatal("after 50ms want 600 B refused and 400 B admitted")
	}
	// Other shards have their own buckets.
	if s.judge("st", "b", 1000).code != "" {
		t.Fatal("shard b refused while only shard a was used")
	}
}

func TestInjectionQueue(t *testing.T) {
	s, _ := newUnit(t, DefaultLimits())
	s.InjectPutFailure(2, "")
	s.InjectPutFailure(0, "ignored")
	s.InjectPutFailure(1, throttleCode)
	s.mu.Lock()
	var got []string
	for range 4 {
		v := s.judge("st", "a", 10)
		got = append(got, v.code)
		if v.code != "" && v.limited {
			t.Fatal("an injected failure is marked as a limit refusal")
		}
	}
	s.mu.Unlock()
	want := []string{internalError, internalError, throttleCode, ""}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes %q, want %q", got, want)
		}
	}
	if st := s.Stats("st").Total; st.FailedRecords != 3 || st.RefusedRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIteratorGenerations(t *testing.T) {
	c := NewFakeClock(t0)
	s, err := New("http://127.0.0.1:1", DefaultLimits(), WithClock(c), WithMaxIterators(4))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range []string{"a", "b", "c", "d", "e"} {
		s.rememberIterator(it, shardRef{"st", "sh-" + it})
	}
	if _, ok := s.iteratorShard("a"); ok {
		t.Fatal("the oldest iterator is still remembered beyond the bound")
	}
	for _, it := range []string{"c", "d", "e"} {
		if r, ok := s.iteratorShard(it); !ok || r.shard != "sh-"+it {
			t.Fatalf("iterator %s: %v %v", it, r, ok)
		}
	}
}

func TestStreamName(t *testing.T) {
	for _, c := range [][3]string{
		{"s", "", "s"},
		{"", "arn:aws:kinesis:us-east-1:000000000000:stream/orders", "orders"},
		{"", "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/x:1", "orders"},
		{"", "", ""},
	} {
		if got := streamName(c[0], c[1]); got != c[2] {
			t.Errorf("streamName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestDecodedLen(t *testing.T) {
	for n := range 40 {
		b := make([]byte, n)
		if got := decodedLen(base64.StdEncoding.EncodeToString(b)); got != n {
			t.Fatalf("padded %d bytes: %d", n, got)
		}
		if got := decodedLen(base64.RawStdEncoding.EncodeToString(b)); got != n {
			t.Fatalf("unpadded %d bytes: %d", n, got)
		}
	}
}

func FuzzDecodedLen(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := decodedLen(base64.StdEncoding.EncodeToString(b)); got != len(b) {
			t.Fatalf("decodedLen of %d bytes = %d", len(b), got)
		}
	})
}
