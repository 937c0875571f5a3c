package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
)

const testStream = "orders"

func open(t *testing.T, f *fakeKinesis, opts ...Option) *Producer {
	t.Helper()
	opts = append([]Option{WithProcessor(testProcessor(true))}, opts...)
	p, err := Open(t.Context(), f, testStream, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// A test that fails early still stops the producer (a call held by the
	// fake ends with the deadline).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// putKeyed puts n records over keys k0..k(keys-1); record i is "i".
func putKeyed(t *testing.T, p *Producer, n, keys int) {
	t.Helper()
	for i := range n {
		if err := p.PutWithKey(t.Context(), fmt.Sprint(i), fmt.Sprintf("k%d", i%keys)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
}

// checkExactlyInOrder asserts that got holds each of the n records exactly
// once and that each key's records are in put order.
func checkExactlyInOrder(t *testing.T, got []records.UserRecord, n, keys int) {
	t.Helper()
	seen := map[string]int{}
	last := map[string]int{}
	for _, r := range got {
		var i int
		if _, err := fmt.Sscan(string(r.Data), &i); err != nil {
			t.Fatalf("bad record %q", r.Data)
		}
		seen[string(r.Data)]++
		if want := fmt.Sprintf("k%d", i%keys); r.PartitionKey != want {
			t.Fatalf("record %d has key %q, want %q", i, r.PartitionKey, want)
		}
		if l, ok := last[r.PartitionKey]; ok && l >= i {
			t.Fatalf("key %s: record %d arrived after %d", r.PartitionKey, i, l)
		}
		last[r.PartitionKey] = i
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("got %d records (%d distinct), want %d", len(got), len(seen), n)
	}
}

func TestDeliversEverythingInOrderWithinCallLimits(t *testing.T) {
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", agg), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(testStream, 3)
				p, err := Open(t.Context(), f, testStream, WithProcessor(testProcessor(agg)), PutRateLimit(1e6), BandwidthLimit(1<<30))
				if err != nil {
					t.Fatal(err)
				}
				putKeyed(t, p, 3000, 25)
				if err := p.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
				checkExactlyInOrder(t, f.userRecords(), 3000, 25)
				for i, n := range f.calls {
					if n > MaxBatchRecords || f.callBytes[i] > MaxBatchBytes {
						t.Fatalf("call %d: %d entries, %d bytes", i, n, f.callBytes[i])
					}
				}
				st := p.Stats()
				if st.RecordsPut != 3000 || st.RecordsDelivered != 3000 || st.QueueDepth != 0 || st.Failed != 0 {
					t.Fatalf("stats %+v", st)
				}
				if agg && st.KinesisRecords >= 3000 {
					t.Fatalf("aggregation made %d Kinesis records for 3000", st.KinesisRecords)
				}
				if err := p.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestBigRecordsSplitAt5MiB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		p := open(t, f, PutRateLimit(1e6), BandwidthLimit(1<<30))
		big := strings.Repeat("x", 900<<10)
		for i := range 12 {
			if err := p.PutWithKey(t.Context(), big+fmt.Sprint(i), "k"); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(f.calls) < 3 {
			t.Fatalf("12 records of 900 KiB went in %d calls", len(f.calls))
		}
		for i, b := range f.callBytes {
			if b > MaxBatchBytes {
				t.Fatalf("call %d carried %d bytes", i, b)
			}
		}
		if got := len(f.userRecords()); got != 12 {
			t.Fatalf("delivered %d of 12", got)
		}
	})
}

func TestBufferTimeAndBatchSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		p := open(t, f, BufferTime(time.Second), BatchSize(10))
		defer p.Close(t.Context())
		if err := p.Put(t.Context(), "one"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if f.numCalls() != 0 {
			t.Fatalf("sent before the buffer time: %v", f.calls)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if f.numCalls() != 1 {
			t.Fatalf("not sent after the buffer time: %v", f.calls)
		}
		for i := range 10 {
			if err := p.Put(t.Context(), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if f.numCalls() != 2 {
			t.Fatalf("a full batch did not go at once: calls %v", f.calls)
		}
	})
}

func TestPartialFailureRetriesOnlyFailedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		var sent [][]string
		f.fail = func(call, i int, e types.PutRecordsRequestEntry) string {
			for len(sent) <= call {
				sent = append(sent, nil)
			}
			sent[call] = append(sent[call], string(e.Data))
			if call == 0 && i%3 == 0 {
				return "InternalFailure"
			}
			return ""
		}
		p := open(t, f, WithProcessor(testProcessor(false)), BatchSize(500))
		putKeyed(t, p, 300, 300)
		if err := p.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(sent) < 2 {
			t.Fatalf("calls: %d", len(sent))
		}
		want := 0
		for i := range sent[0] {
			if i%3 == 0 {
				want++
			}
		}
		retried := 0
		for _, c := range sent[1:] {
			retried += len(c)
		}
		if retried != want {
			t.Fatalf("retried %d entries, want the %d that failed", retried, want)
		}
		checkExactlyInOrder(t, f.userRecords(), 300, 300)
		if st := p.Stats(); st.Retried != int64(want) || st.Throttled != 0 {
			t.Fatalf("stats %+v", st)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestThrottledShardKeepsKeyOrderAndLosesNothing(t *testing.T) {
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", agg), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(testStream, 2)
				f.limRecords, f.limBytes = 100, 1<<20
				var flushes []FlushInfo
				p := open(t, f, WithProcessor(testProcessor(agg)), RetryLimit(50), AfterFlush(func(fi FlushInfo) { flushes = append(flushes, fi) }))
				putKeyed(t, p, 2000, 10)
				if err := p.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
				checkExactlyInOrder(t, f.userRecords(), 2000, 10)
				st := p.Stats()
				if !agg && st.Throttled == 0 {
					t.Fatalf("expected throttles against a 100 records/s fake with a 1000 records/s limit: %+v", st)
				}
				if st.Failed != 0 || st.RecordsDelivered != 2000 {
					t.Fatalf("stats %+v", st)
				}
				if len(flushes) != int(st.Requests) {
					t.Fatalf("%d AfterFlush calls for %d requests", len(flushes), st.Requests)
				}
			})
		})
	}
}

func TestRetryLimitGoesToCallbackAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		f.fail = func(call, i int, e types.PutRecordsRequestEntry) string {
			if strings.Contains(string(e.Data), "\tpoison") {
				return "InternalFailure"
			}
			return ""
		}
		var cb []FailedRecord
		p := open(t, f, WithProcessor(testProcessor(false)), RetryLimit(3), ErrorCallback(func(fr FailedRecord) { cb = append(cb, fr) }))
		for i := range 100 {
			item := fmt.Sprint("ok", i)
			if i%25 == 0 {
				item = fmt.Sprint("poison", i)
			}
			if err := p.Put(t.Context(), item); err != nil {
				t.Fatal(err)
			}
			if i == 49 {
				var fe *DeliveryError
				if err := p.Flush(t.Context()); !errors.As(err, &fe) || fe.Count != 2 {
					t.Fatalf("Flush after 2 poison records = %v", err)
				}
				if err := p.Flush(t.Context()); err != nil {
					t.Fatalf("second Flush = %v", err)
				}
			}
		}
		err := p.Close(t.Context())
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("Close = %v, want a DeliveryError", err)
		}
		if de.Count != 4 || len(de.Records) != 4 || len(cb) != 4 {
			t.Fatalf("DeliveryError %d/%d records, callback %d; want 4", de.Count, len(de.Records), len(cb))
		}
		for _, r := range de.Records {
			var ee *EntryError
			if !strings.HasPrefix(r.Item.(string), "poison") || r.Attempts != 4 || !errors.As(r.Err, &ee) || ee.Code != "InternalFailure" {
				t.Fatalf("failed record %+v", r)
			}
		}
		if got := len(f.userRecords()); got != 96 {
			t.Fatalf("delivered %d, want 96", got)
		}
		if st := p.Stats(); st.Failed != 4 || st.RecordsDelivered != 96 {
			t.Fatalf("stats %+v", st)
		}
		if !strings.Contains(err.Error(), "4 records not delivered") {
			t.Fatalf("message: %v", err)
		}
	})
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		var at []time.Time
		f.callErr = func(call int) error {
			at = append(at, time.Now())
			return &types.ProvisionedThroughputExceededException{Message: new(string)}
		}
		p := open(t, f, RetryLimit(6), Backoff(100*time.Millisecond, 400*time.Millisecond))
		if err := p.Put(t.Context(), "x"); err != nil {
			t.Fatal(err)
		}
		err := p.Close(t.Context())
		var de *DeliveryError
		if !errors.As(err, &de) || de.Count != 1 || !errors.As(err, new(*types.ProvisionedThroughputExceededException)) {
			t.Fatalf("Close = %v", err)
		}
		if len(at) != 7 {
			t.Fatalf("%d attempts, want 7", len(at))
		}
		caps := []time.Duration{100, 200, 400, 400, 400, 400}
		for i := 1; i < len(at); i++ {
			if d := at[i].Sub(at[i-1]); d > caps[i-1]*time.Millisecond+time.Millisecond {
				t.Fatalf("wait %d = %v, over the cap %v", i, d, caps[i-1]*time.Millisecond)
			}
		}
	})
}

func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		f.hold = make(chan struct{})
		p := open(t, f, MaxQueueSize(10), BufferTime(time.Millisecond))
		for i := range 10 {
			if err := p.TryPut(t.Context(), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.TryPut(t.Context(), "11"); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TryPut on a full queue = %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if err := p.Put(ctx, "11"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put on a full queue = %v", err)
		}
		cancel()
		if st := p.Stats(); st.QueueDepth != 10 || st.InFlight != 1 {
			t.Fatalf("stats %+v", st)
		}
		putDone := make(chan error)
		go func() { putDone <- p.Put(t.Context(), "11") }()
		synctest.Wait()
		select {
		case err := <-putDone:
			t.Fatalf("Put returned %v while the queue is full", err)
		default:
		}
		f.hold <- struct{}{} // the first call goes through
		if err := <-putDone; err != nil {
			t.Fatal(err)
		}
		close(f.hold)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := len(f.userRecords()); got != 11 {
			t.Fatalf("delivered %d, want 11", got)
		}
	})
}

func TestQueueBoundedByBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		f.hold = make(chan struct{})
		p := open(t, f, MaxQueueBytes(2<<20))
		item := strings.Repeat("y", 700<<10)
		for range 2 {
			if err := p.TryPutWithKey(t.Context(), item, "k"); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.TryPutWithKey(t.Context(), item, "k"); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("third 700 KiB record in a 2 MiB queue: %v", err)
		}
		close(f.hold)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// windowMax is the most records any one-second window holds.
func windowMax(rs []stored) int {
	best, j := 0, 0
	for i := range rs {
		for rs[i].at.Sub(rs[j].at) >= time.Second {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestRateLimitIsPerShard(t *testing.T) {
	elapsed := map[int]time.Duration{}
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(testStream, shards)
				p := open(t, f, WithProcessor(testProcessor(false)), PutRateLimit(100), MaxQueueSize(100000))
				start := time.Now()
				for i := range 2000 {
					if err := p.Put(t.Context(), fmt.Sprint(i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := p.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
				elapsed[shards] = time.Since(start)
				total := 0
				for _, s := range f.shards {
					rs := f.stored(s.ID)
					total += len(rs)
					if m := windowMax(rs); m > 100 {
						t.Fatalf("shard %s took %d records within one second (limit 100)", s.ID, m)
					}
				}
				if total != 2000 {
					t.Fatalf("delivered %d", total)
				}
			})
		})
	}
	if r := float64(elapsed[1]) / float64(elapsed[4]); r < 3 {
		t.Fatalf("4 shards were %.2fx as fast as 1 (1: %v, 4: %v); want >= 3x", r, elapsed[1], elapsed[4])
	}
}

func TestBandwidthLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		p := open(t, f, WithProcessor(testProcessor(false)), BandwidthLimit(100<<10))
		start := time.Now()
		item := strings.Repeat("z", 10<<10)
		for range 50 {
			if err := p.Put(t.Context(), item); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		// 500 KiB at 100 KiB/s: the last fifth can only go after 4 s.
		if d := time.Since(start); d < 4*time.Second {
			t.Fatalf("500 KiB at 100 KiB/s took %v", d)
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	t.Run("flush in flight loses nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(testStream, 2)
			f.hold = make(chan struct{})
			p := open(t, f, BatchSize(50))
			putKeyed(t, p, 120, 7)
			synctest.Wait()
			go func() {
				for range f.hold {
				}
			}()
			go func() {
				time.Sleep(10 * time.Millisecond)
				close(f.hold)
			}()
			if err := p.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkExactlyInOrder(t, f.userRecords(), 120, 7)
			if err := p.Put(t.Context(), "late"); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after Close = %v", err)
			}
			if err := p.Flush(t.Context()); !errors.Is(err, ErrClosed) {
				t.Fatalf("Flush after Close = %v", err)
			}
			if err := p.Close(t.Context()); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close = %v", err)
			}
		})
	})
	t.Run("deadline names every undelivered record", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(testStream, 1)
			f.hold = make(chan struct{}) // never released: calls end with ctx
			p := open(t, f, MaxQueueSize(1000))
			putKeyed(t, p, 30, 3)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			err := p.Close(ctx)
			var de *DeliveryError
			if !errors.As(err, &de) || de.Count != 30 || !errors.Is(err, ErrClosed) {
				t.Fatalf("Close = %v", err)
			}
			seen := map[string]bool{}
			for _, r := range de.Records {
				seen[r.Item.(string)] = true
			}
			if len(seen) != 30 {
				t.Fatalf("DeliveryError names %d distinct records", len(seen))
			}
		})
	})
	t.Run("blocked Put returns ErrClosed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(testStream, 1)
			f.hold = make(chan struct{})
			p := open(t, f, MaxQueueSize(1))
			if err := p.Put(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error)
			go func() { errc <- p.Put(t.Context(), "b") }()
			synctest.Wait()
			close(f.hold)
			if err := p.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil && !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Put = %v", err)
			}
		})
	})
}

func TestInvalidRecordsRejectedAtPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		p := open(t, f)
		cases := map[string]func() error{
			"too large":      func() error { return p.Put(t.Context(), strings.Repeat("a", records.MaxRecordSize)) },
			"unserializable": func() error { return p.Put(t.Context(), 42) },
			"long key":       func() error { return p.PutWithKey(t.Context(), "x", strings.Repeat("é", 257)) },
			"empty key":      func() error { return p.PutWithKey(t.Context(), "x", "") },
			"bad hash key": func() error {
				return p.PutRecord(t.Context(), records.UserRecord{Data: []byte("x"), ExplicitHashKey: "-1"})
			},
			"hash key > 2^128": func() error {
				return p.PutRecord(t.Context(), records.UserRecord{Data: []byte("x"), ExplicitHashKey: "340282366920938463463374607431768211456"})
			},
		}
		for name, put := range cases {
			if err := put(); !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
			}
		}
		if err := cases["too large"](); !errors.Is(err, records.ErrTooLarge) {
			t.Errorf("too large: %v, want records.ErrTooLarge", err)
		}
		if err := p.Put(t.Context(), "fine"); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := f.userRecords(); len(got) != 1 || string(got[0].Data) != "fine" {
			t.Fatalf("delivered %v", got)
		}
	})
}

func TestOptionsValidatedOnce(t *testing.T) {
	f := newFake(testStream, 1)
	proc := WithProcessor(testProcessor(false))
	cases := []struct {
		opt  Option
		name string
	}{
		{BufferTime(0), "BufferTime"},
		{BatchSize(501), "BatchSize"},
		{BatchSize(0), "BatchSize"},
		{MaxQueueSize(0), "MaxQueueSize"},
		{MaxQueueBytes(1000), "MaxQueueBytes"},
		{PutRateLimit(0), "PutRateLimit"},
		{BandwidthLimit(10), "BandwidthLimit"},
		{RetryLimit(-1), "RetryLimit"},
		{Backoff(time.Second, time.Millisecond), "Backoff"},
		{MaxInFlight(0), "MaxInFlight"},
		{RequestTimeout(-1), "RequestTimeout"},
		{ShardRefreshInterval(0), "ShardRefreshInterval"},
		{CreateStream(0), "CreateStream"},
		{Logger(nil), "Logger"},
		{WithProcessor(records.Processor{Name: "half"}), "Processor"},
	}
	for _, c := range cases {
		_, err := New(f, testStream, proc, c.opt)
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := New(f, "", proc); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty stream: %v", err)
	}
	p, err := New(f, testStream, proc)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(t.Context(), "x"); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Put before Start = %v", err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStart(t *testing.T) {
	t.Run("missing stream fails at once", func(t *testing.T) {
		f := newFake(testStream, 1)
		f.exists = false
		_, err := Open(t.Context(), f, testStream, WithProcessor(testProcessor(false)))
		if !errors.Is(err, ErrStreamNotFound) || !strings.Contains(err.Error(), testStream) {
			t.Fatalf("Open = %v", err)
		}
		if f.listCalls != 0 {
			t.Fatalf("listed shards of a missing stream")
		}
	})
	t.Run("create stream waits for ACTIVE", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake("other", 1)
			f.exists = false
			p := open(t, f, CreateStream(5))
			if len(f.shards) != 5 || f.describes != 0 {
				t.Fatalf("shards %d, describes left %d", len(f.shards), f.describes)
			}
			putKeyed(t, p, 200, 200)
			if err := p.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			used := 0
			for _, s := range f.shards {
				if len(f.stored(s.ID)) > 0 {
					used++
				}
			}
			if used != 5 {
				t.Fatalf("records reached %d of 5 shards", used)
			}
		})
	})
	t.Run("existing stream left alone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(testStream, 2)
			p := open(t, f, CreateStream(7))
			if len(f.shards) != 2 {
				t.Fatalf("stream changed to %d shards", len(f.shards))
			}
			p.Close(t.Context())
		})
	})
}

func TestReshardRefreshesShardMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		p := open(t, f, ShardRefreshInterval(time.Hour))
		lists := f.listCalls
		putKeyed(t, p, 10, 10)
		if err := p.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if f.listCalls != lists {
			t.Fatalf("listed shards without cause")
		}
		f.mu.Lock()
		f.setShards(4) // a reshard the producer has not seen
		f.wrongShard = true
		f.mu.Unlock()
		putKeyed(t, p, 10, 10)
		if err := p.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		putKeyed(t, p, 10, 10)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if f.listCalls == lists {
			t.Fatalf("a record on an unexpected shard did not refresh the shard map")
		}
		if p.shardMap.Len() != 4 {
			t.Fatalf("shard map has %d shards", p.shardMap.Len())
		}
	})
}

func TestConcurrentCallsPerShardWithDistinctKeys(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprint("OrderPerKey=", ordered), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(testStream, 1)
				f.hold = make(chan struct{})
				p := open(t, f, WithProcessor(testProcessor(false)), MaxInFlight(4), BatchSize(100), OrderPerKey(ordered))
				for i := range 1000 {
					if err := p.Put(t.Context(), fmt.Sprint(i)); err != nil {
						t.Fatal(err)
					}
				}
				synctest.Wait()
				if st := p.Stats(); st.InFlight != 4 {
					t.Fatalf("%d calls in flight on one shard with distinct keys, want 4", st.InFlight)
				}
				close(f.hold)
				if err := p.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
				if n := len(f.userRecords()); n != 1000 {
					t.Fatalf("delivered %d", n)
				}
			})
		})
	}
}

func TestRepeatedKeyHasOneRecordInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		f.hold = make(chan struct{})
		p := open(t, f, WithProcessor(testProcessor(false)), MaxInFlight(4))
		putKeyed(t, p, 50, 1)
		time.Sleep(time.Second) // past the buffer time
		synctest.Wait()
		if st := p.Stats(); st.InFlight != 1 {
			t.Fatalf("%d calls in flight for one key", st.InFlight)
		}
		close(f.hold)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i, n := range f.calls {
			if n != 1 {
				t.Fatalf("call %d carried %d records of the same key", i, n)
			}
		}
		checkExactlyInOrder(t, f.userRecords(), 50, 1)
	})
}

// A call counts against its shard's limits until one second after it
// reached Kinesis, at most maxArrivalDelay after it was sent, so a shard
// limited exactly like the producer never throttles while delays vary
// within that bound.
func TestNoThrottlesWhenDelaysVary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		f.limRecords, f.limBytes = 200, 1<<20
		f.jitter = maxArrivalDelay
		p := open(t, f, WithProcessor(testProcessor(false)), PutRateLimit(200), BatchSize(100))
		start := time.Now()
		for i := range 4000 {
			if err := p.Put(t.Context(), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if st.Throttled != 0 || st.RecordsDelivered != 4000 {
			t.Fatalf("stats %+v", st)
		}
		// 2000 records per shard at 200/s: 9 windows after the first,
		// each stretched by at most maxArrivalDelay.
		if d := time.Since(start); d > 9*(time.Second+maxArrivalDelay)+time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

func TestPartitionKeyFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		p := open(t, f, PartitionKeyFunc(func(item any) string {
			if s := item.(string); s != "random" {
				return "key-" + s
			}
			return ""
		}))
		for _, it := range []string{"a", "b", "random"} {
			if err := p.Put(t.Context(), it); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{}
		for _, r := range f.userRecords() {
			keys[string(r.Data)] = r.PartitionKey
		}
		if keys["a"] != "key-a" || keys["b"] != "key-b" || len(keys["random"]) == 0 || strings.HasPrefix(keys["random"], "key-") {
			t.Fatalf("keys %v", keys)
		}
	})
}

func TestCallErrorsAndTimeoutsAreRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		f.callErr = func(call int) error {
			if call < 2 {
				return errors.New("connection reset by peer")
			}
			return nil
		}
		f.hold = make(chan struct{})
		go func() {
			// The first call hangs past RequestTimeout; the others go.
			time.Sleep(5 * time.Second)
			close(f.hold)
		}()
		var timeouts, resets int
		p := open(t, f, RequestTimeout(time.Second), RetryLimit(10), AfterFlush(func(fi FlushInfo) {
			switch {
			case errors.Is(fi.Err, context.DeadlineExceeded):
				timeouts++
			case fi.Err != nil && strings.Contains(fi.Err.Error(), "connection reset"):
				resets++
			}
		}))
		putKeyed(t, p, 20, 4)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if timeouts == 0 || resets != 2 {
			t.Fatalf("%d timed-out calls, %d reset calls", timeouts, resets)
		}
		checkExactlyInOrder(t, f.userRecords(), 20, 4)
		if st := p.Stats(); st.Retried == 0 || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestPeriodicShardRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 1)
		p := open(t, f, ShardRefreshInterval(10*time.Second))
		lists := f.listCalls
		f.mu.Lock()
		f.setShards(3)
		f.mu.Unlock()
		time.Sleep(11 * time.Second)
		putKeyed(t, p, 30, 30)
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if f.listCalls == lists || p.shardMap.Len() != 3 {
			t.Fatalf("after the refresh interval: %d listings, %d shards", f.listCalls-lists, p.shardMap.Len())
		}
	})
}

func TestPutBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(testStream, 2)
		p := open(t, f, PartitionKeyFunc(func(item any) string { s, _ := item.(string); return "k" + s[:min(len(s), 3)] }))
		err := p.PutBatch(t.Context(), []any{"1", 2, "3", strings.Repeat("x", records.MaxRecordSize), "5"})
		items, batchErr := records.SplitErrors(err)
		if batchErr != nil || len(items) != 2 || items[0].Index != 1 || items[1].Index != 3 ||
			!errors.Is(items[0].Err, ErrInvalidRecord) || !errors.Is(items[1].Err, records.ErrTooLarge) {
			t.Fatalf("PutBatch = %v", err)
		}
		if err := p.PutBatch(t.Context(), []any{"6", "7"}); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range f.userRecords() {
			got[string(r.Data)] = r.PartitionKey
		}
		if len(got) != 5 || got["6"] != "k6" || got["1"] != "k1" || got["3"] != "k3" || got["5"] != "k5" || got["7"] != "k7" {
			t.Fatalf("delivered %v", got)
		}
		err = p.PutBatch(t.Context(), []any{"8"})
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("PutBatch after Close = %v", err)
		}
	})
}
