package shards_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
)

func TestNewValidatesOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  shards.Option
		want string
	}{
		{"queue", shards.MaxQueueSize(0), "MaxQueueSize 0"},
		{"shard consumers", shards.MaxShardConsumers(-1), "MaxShardConsumers -1"},
		{"record limit high", shards.RecordLimit(10001), "RecordLimit 10001"},
		{"record limit low", shards.RecordLimit(0), "RecordLimit 0"},
		{"sleep", shards.SleepWhenCaughtUp(-time.Second), "SleepWhenCaughtUp -1s"},
		{"timestamp missing", shards.StartAt(shards.AtTimestamp, time.Time{}), "AT_TIMESTAMP: timestamp is zero"},
		{"timestamp unexpected", shards.StartAt(shards.Latest, time.Unix(1, 0)), "StartAt LATEST with timestamp"},
		{"iterator type", shards.StartAt("AT_SEQUENCE_NUMBER", time.Time{}), `iterator type "AT_SEQUENCE_NUMBER"`},
		{"fetch rate high", shards.ShardFetchRate(6), "ShardFetchRate 6"},
		{"fetch rate zero", shards.ShardFetchRate(0), "ShardFetchRate 0"},
		{"read rate", shards.ShardReadRate(3 << 20), "ShardReadRate 3145728"},
		{"store", shards.Checkpointer(nil), "Checkpointer is nil"},
		{"processor", shards.Processor(records.Processor{Name: "half"}), `Processor "half"`},
		{"retry", shards.RetryLimit(-1), "RetryLimit -1"},
		{"backoff", shards.Backoff(time.Second, time.Millisecond), "Backoff(1s, 1ms)"},
		{"create", shards.CreateStream(0), "CreateStream shards 0"},
		{"app", shards.AppName(""), "AppName is empty"},
		{"shutdown", shards.ShutdownTimeout(0), "ShutdownTimeout 0s"},
		{"batch", shards.MaxBatchSize(0), "MaxBatchSize 0"},
		{"lease interval", shards.LeaseInterval(0), "LeaseInterval 0s"},
		{"list interval", shards.ShardListInterval(-1), "ShardListInterval -1ns"},
		{"checkpoint interval", shards.CheckpointInterval(0), "CheckpointInterval 0s"},
		{"emit", shards.Emit(nil), "Emit is nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shards.New(newFake(1), "s", tc.opt)
			if !errors.Is(err, shards.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want ErrInvalidOption naming %q", err, tc.want)
			}
		})
	}
	if _, err := shards.New(nil, "s"); !errors.Is(err, shards.ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
	if _, err := shards.New(newFake(1), ""); !errors.Is(err, shards.ErrInvalidOption) {
		t.Fatalf("empty stream: %v", err)
	}
}

func jsonData(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"n":%d}`, i)
	}
	return out
}

// collect reads n records with the iterator and returns them.
func collect(t *testing.T, c *shards.Consumer, n int) []shards.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var got []shards.Record
	for rec, err := range c.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
		if len(got) == n {
			break
		}
	}
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	return got
}

// An expired iterator is replaced from the last fetched record, a
// throttled read backs off, and nothing is lost or repeated.
func TestExpiredIteratorAndThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.put("shardId-000000000000", jsonData(500)...)
		f.fault = func(shard string, call int) error {
			switch call {
			case 2:
				return &types.ExpiredIteratorException{Message: new(string)}
			case 4, 5:
				return &types.ProvisionedThroughputExceededException{Message: new(string)}
			}
			return nil
		}
		c, err := shards.New(f, "s", shards.ShardFetchRate(5))
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, c, 500)
		for i, r := range got {
			if r.SequenceNumber != seqOf(i) {
				t.Fatalf("record %d has sequence %s, want %s", i, r.SequenceNumber, seqOf(i))
			}
		}
		if s := c.Stats(); s.Throttles != 2 {
			t.Fatalf("stats count %d throttles, want 2", s.Throttles)
		}
		// Failed calls count against the 5 calls/s too.
		calls := f.calls["shardId-000000000000"]
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 200*time.Millisecond {
				t.Fatalf("GetRecords call %d came %v after the previous one, want ≥ 200ms", i, gap)
			}
		}
	})
}

// One goroutine per shard: a busy shard is read at its own pace while an
// idle shard sleeps between empty reads.
func TestIdleShardDoesNotDelayBusyShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.put("shardId-000000000001", jsonData(2000)...)
		c, err := shards.New(f, "s", shards.ShardFetchRate(5), shards.SleepWhenCaughtUp(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		collect(t, c, 2000)
		// 20 pages of 100 at 5 fetches/s: 3.8 s after the first fetch.
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("busy shard took %v for 20 pages at 5 fetches/s", d)
		}
		if n := len(f.calls["shardId-000000000000"]); n > 3 {
			t.Fatalf("idle shard read %d times in 4 s with a 2 s caught-up sleep", n)
		}
	})
}

// Reads stay within the call rate and the read bandwidth per shard.
func TestReadsStayWithinShardLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		big := make([][]byte, 300)
		for i := range big {
			big[i] = []byte(fmt.Sprintf(`{"pad":"%s"}`, strings.Repeat("x", 10000)))
		}
		f.put("shardId-000000000000", big...)
		const rate = 200_000 // bytes/s, so each page of ~1 MB needs ~5 s
		c, err := shards.New(f, "s", shards.ShardFetchRate(5), shards.ShardReadRate(rate))
		if err != nil {
			t.Fatal(err)
		}
		collect(t, c, 300)
		calls, bytes := f.calls["shardId-000000000000"], f.bytes["shardId-000000000000"]
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			want := max(200*time.Millisecond, time.Duration(float64(bytes[i-1])/rate*float64(time.Second)))
			if gap < want {
				t.Fatalf("call %d came %v after one that read %d bytes, want ≥ %v", i, gap, bytes[i-1], want)
			}
		}
	})
}

// A merged shard starts only after both parents are finished, however
// slow one parent is.
func TestMergeChildWaitsForBothParents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(2)
		f.addShard("shardId-000000000002", "shardId-000000000000", "shardId-000000000001")
		f.put("shardId-000000000000", jsonData(10)...)
		f.put("shardId-000000000001", jsonData(1000)...) // ten pages at 1 fetch/s
		f.put("shardId-000000000002", jsonData(10)...)
		f.close("shardId-000000000000")
		f.close("shardId-000000000001")
		c, err := shards.New(f, "s")
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, c, 1020)
		lastParent, firstChild := -1, -1
		for i, r := range got {
			switch r.ShardID {
			case "shardId-000000000002":
				if firstChild < 0 {
					firstChild = i
				}
			default:
				lastParent = i
			}
		}
		if firstChild < lastParent {
			t.Fatalf("child record delivered at %d before the last parent record at %d", firstChild, lastParent)
		}
		for _, s := range []string{"shardId-000000000000", "shardId-000000000001"} {
			cp, err := c.Store().Get(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if !cp.Finished || cp.SequenceNumber == "" {
				t.Fatalf("parent %s checkpoint %+v, want finished", s, cp)
			}
		}
	})
}

// Shard listing follows NextToken pages past 100 and 1000 shards: all
// 1,050 shards are read.
func TestListingPaginates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1050
		f := newFake(n)
		for i := range n {
			f.put(fmt.Sprintf("shardId-%012d", i), []byte(`{}`))
		}
		c, err := shards.New(f, "s")
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, c, n)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r.ShardID] = true
		}
		if len(seen) != n {
			t.Fatalf("records from %d shards, want %d", len(seen), n)
		}
	})
}

// Close stops a running loop; in-flight records finish and the final
// checkpoint covers exactly the finished ones.
func TestCloseWritesFinalCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.put("shardId-000000000000", jsonData(100)...)
		c, err := shards.New(f, "s", shards.MaxQueueSize(10))
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range c.Records(context.Background()) {
				if err != nil {
					t.Error(err)
					return
				}
				if n.Add(1) == 30 {
					// Close from outside the loop while this record is
					// in flight.
					done := make(chan error)
					go func() { done <- c.Close(context.Background()) }()
					synctest.Wait()
					select {
					case err := <-done:
						t.Errorf("Close returned %v before the in-flight record finished", err)
					default:
					}
					defer func() {
						if err := <-done; err != nil {
							t.Error(err)
						}
					}()
				}
			}
		}()
		wg.Wait()
		if n.Load() != 30 {
			t.Fatalf("%d records delivered, want 30", n.Load())
		}
		cp, err := c.Store().Get(context.Background(), "shardId-000000000000")
		if err != nil {
			t.Fatal(err)
		}
		if cp.SequenceNumber != seqOf(29) || !cp.Complete {
			t.Fatalf("checkpoint %+v, want complete at %s", cp, seqOf(29))
		}
		for _, err := range c.Records(context.Background()) {
			if !errors.Is(err, shards.ErrClosed) {
				t.Fatalf("Records after Close yielded %v, want ErrClosed", err)
			}
		}
	})
}

// A child whose parent is no longer listed (trimmed after the retention
// period) starts at once; a child whose listed parent is unfinished waits.
func TestChildOfTrimmedParentStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(0)
		f.addShard("shardId-000000000005", "shardId-000000000001", "") // parent gone
		f.addShard("shardId-000000000006", "", "")
		f.addShard("shardId-000000000007", "shardId-000000000006", "") // parent open
		f.put("shardId-000000000005", jsonData(3)...)
		f.put("shardId-000000000006", jsonData(3)...)
		f.put("shardId-000000000007", jsonData(3)...)
		c, err := shards.New(f, "s")
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, c, 6)
		for _, r := range got {
			if r.ShardID == "shardId-000000000007" {
				t.Fatalf("child of an open parent delivered %s", r.SequenceNumber)
			}
		}
		if n := len(f.calls["shardId-000000000007"]); n != 0 {
			t.Fatalf("child of an open, unfinished parent was read %d times", n)
		}
	})
}

type handlerFunc func(context.Context, []records.Record) (records.HandlerOutput, error)

func (f handlerFunc) Handle(ctx context.Context, b []records.Record) (records.HandlerOutput, error) {
	return f(ctx, b)
}

// Past the retry limit a record the handler keeps retrying fails (error
// callback, then finished); a batch error past the limit stops Run with
// the error and leaves the batch unfinished.
func TestRunRetryLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.put("shardId-000000000000", jsonData(5)...)
		var mu sync.Mutex
		var reported []error
		c, err := shards.New(f, "s", shards.RetryLimit(3), shards.Backoff(time.Second, time.Second),
			shards.ErrorCallback(func(err error) {
				mu.Lock()
				reported = append(reported, err)
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err = c.Run(ctx, handlerFunc(func(ctx context.Context, b []records.Record) (records.HandlerOutput, error) {
			calls++
			out := records.HandlerOutput{Results: make([]records.Result, len(b))}
			for i, r := range b {
				if r.SequenceNumber == seqOf(2) {
					out.Results[i] = records.Result{Status: records.StatusRetry, Message: "not yet"}
				}
			}
			if calls == 3 {
				cancel()
			}
			return out, nil
		}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if calls != 3 {
			t.Fatalf("handler called %d times, want 3 (one batch, two retries)", calls)
		}
		mu.Lock()
		if len(reported) != 1 || !errors.Is(reported[0], shards.ErrHandlerFailed) || !strings.Contains(reported[0].Error(), seqOf(2)) {
			t.Fatalf("reported %v, want one handler failure for %s", reported, seqOf(2))
		}
		mu.Unlock()
		cp, _ := c.Store().Get(context.Background(), "shardId-000000000000")
		if cp.SequenceNumber != seqOf(4) {
			t.Fatalf("checkpoint %+v, want %s", cp, seqOf(4))
		}

		// A handler that always fails its batch: Run returns its error and
		// the checkpoint stays.
		f.put("shardId-000000000000", jsonData(3)...)
		c2, err := shards.New(f, "s", shards.Checkpointer(c.Store()), shards.RetryLimit(2), shards.Backoff(time.Second, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = c2.Run(context.Background(), handlerFunc(func(context.Context, []records.Record) (records.HandlerOutput, error) {
			return records.HandlerOutput{}, boom
		}))
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want the handler's error", err)
		}
		cp, _ = c.Store().Get(context.Background(), "shardId-000000000000")
		if cp.SequenceNumber != seqOf(4) {
			t.Fatalf("checkpoint moved to %+v after failed batches", cp)
		}
	})
}

// Three consumers sharing a memory backend balance 4 shards to 1 or 2
// each, whichever starts first, and a shard never has two readers.
func TestLeaseBalancing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		backend, err := checkpoint.NewMemoryBackend(checkpoint.WithSessionTimeout(10*time.Second), checkpoint.WithHeartbeatFrequency(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		holder := map[string]string{} // shard -> worker
		held := map[string]int{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range 3 {
			w := fmt.Sprintf("w%d", i)
			st, err := backend.Store("app", "s", checkpoint.WithWorkerID(w))
			if err != nil {
				t.Fatal(err)
			}
			c, err := shards.New(f, "s", shards.Checkpointer(st), shards.OnLease(func(ev shards.LeaseEvent) {
				mu.Lock()
				defer mu.Unlock()
				if ev.Acquired {
					if h := holder[ev.Shard]; h != "" {
						t.Errorf("%s acquired %s while %s reads it", w, ev.Shard, h)
					}
					holder[ev.Shard] = w
					held[w]++
				} else {
					delete(holder, ev.Shard)
					held[w]--
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, err := range c.Records(ctx) {
					if err != nil {
						t.Error(err)
					}
				}
			}()
			time.Sleep(5 * time.Second) // fake time: the first worker grabs everything
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		mu.Lock()
		total := 0
		for _, w := range []string{"w0", "w1", "w2"} {
			if n := held[w]; n < 1 || n > 2 {
				t.Errorf("%s holds %d shards, want 1 or 2 (%v)", w, n, held)
			}
			total += held[w]
		}
		if total != 4 {
			t.Errorf("%d shards held, want 4 (%v)", total, held)
		}
		mu.Unlock()
		cancel()
		wg.Wait()
	})
}

// Records a handler emits go to the Emit function before the batch
// counts as finished; without Emit, emitting fails the batch.
func TestRunEmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		f.put("shardId-000000000000", jsonData(4)...)
		var emitted []records.UserRecord
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := shards.New(f, "s", shards.Emit(func(_ context.Context, recs []records.UserRecord) error {
			emitted = append(emitted, recs...)
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		h := handlerFunc(func(_ context.Context, b []records.Record) (records.HandlerOutput, error) {
			out := records.HandlerOutput{Results: make([]records.Result, len(b))}
			for _, r := range b {
				out.Emit = append(out.Emit, records.UserRecord{PartitionKey: r.SequenceNumber, Data: r.Data})
			}
			if seen += len(b); seen == 4 {
				cancel()
			}
			return out, nil
		})
		if err := c.Run(ctx, h); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if len(emitted) != 4 || emitted[3].PartitionKey != seqOf(3) {
			t.Fatalf("emitted %v", emitted)
		}

		c2, err := shards.New(f, "s2", shards.RetryLimit(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Run(context.Background(), h); err == nil || !strings.Contains(err.Error(), "no Emit option") {
			t.Fatalf("Run without Emit = %v", err)
		}
	})
}

// MaxShardConsumers caps the shards one consumer reads.
func TestMaxShardConsumers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(4)
		for i := range 4 {
			f.put(fmt.Sprintf("shardId-%012d", i), jsonData(5)...)
		}
		c, err := shards.New(f, "s", shards.MaxShardConsumers(2))
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, c, 10)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r.ShardID] = true
		}
		read := 0
		for _, calls := range f.calls {
			if len(calls) > 0 {
				read++
			}
		}
		if len(seen) != 2 || read != 2 {
			t.Fatalf("records from %d shards, %d shards read; want 2", len(seen), read)
		}
	})
}
