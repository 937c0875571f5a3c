package tests

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

// unlimited lifts the producer's per-shard limits: kinesalite enforces
// none, and these tests are about delivery, not pacing.
var unlimited = []batch.Option{batch.PutRateLimit(1 << 30), batch.BandwidthLimit(1 << 40)}

// TestProducerRoundTripEveryProcessor puts items of about 1 KB through each
// native processor into a 1-shard stream and reads them back exactly once,
// in order per partition key.
func TestProducerRoundTripEveryProcessor(t *testing.T) {
	env := harness.Kinesis(t)
	n := producerItems(t)
	for _, name := range records.Names() {
		t.Run(name, func(t *testing.T) {
			proc, err := records.ByName(name)
			if err != nil {
				t.Fatal(err)
			}
			stream := env.NewStream(t, 1)
			ctx := testCtx(t, 5*time.Minute)
			p, err := batch.Open(ctx, env.Client, stream, append(unlimited, batch.WithProcessor(proc))...)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]any, n)
			for i := range want {
				key := fmt.Sprintf("key-%d", i%500)
				want[i] = producerItem(name, i, 1000, key)
				if err := p.PutWithKey(ctx, want[i], key); err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			st := p.Stats()
			if st.RecordsDelivered != int64(n) || st.Failed != 0 || st.QueueDepth != 0 {
				t.Fatalf("stats %+v", st)
			}
			got, _ := readItems(t, env, stream, proc)
			checkSameItems(t, want, got, itemKey)
			t.Logf("%s: %d items in %d Kinesis records, %d calls", name, n, st.KinesisRecords, st.Requests)
		})
	}
}

// TestProducerMultiShardRandomKeys spreads items with random keys over 4
// shards and reads every one back.
func TestProducerMultiShardRandomKeys(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 4)
	ctx := testCtx(t, 2*time.Minute)
	proc := records.KPLJSONProcessor()
	p, err := batch.Open(ctx, env.Client, stream, append(unlimited, batch.WithProcessor(proc))...)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]any, 4000)
	for i := range want {
		want[i] = producerItem(proc.Name, i, 200, "")
		if err := p.Put(ctx, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readItems(t, env, stream, proc)
	checkSameItems(t, want, got, nil)
}

// TestProducerCloseLosesNothing closes with records still buffered and
// calls in flight.
func TestProducerCloseLosesNothing(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 2)
	ctx := testCtx(t, 2*time.Minute)
	proc := records.JSONProcessor()
	p, err := batch.Open(ctx, env.Client, stream, append(unlimited, batch.BufferTime(time.Hour), batch.BatchSize(100))...)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]any, 2550)
	for i := range want {
		want[i] = producerItem(proc.Name, i, 100, fmt.Sprint("k", i%5))
		if err := p.PutWithKey(ctx, want[i], fmt.Sprint("k", i%5)); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.QueueDepth == 0 {
		t.Logf("everything was delivered before Close: %+v", st)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readItems(t, env, stream, proc)
	checkSameItems(t, want, got, itemKey)
	if err := p.Put(ctx, want[0]); !errors.Is(err, batch.ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
}

// TestProducerMissingStream fails at once, without a retry loop.
func TestProducerMissingStream(t *testing.T) {
	env := harness.Kinesis(t)
	ctx := testCtx(t, time.Minute)
	start := time.Now()
	_, err := batch.Open(ctx, env.Client, harness.UniqueName(t))
	if !errors.Is(err, batch.ErrStreamNotFound) {
		t.Fatalf("Open on a missing stream = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the error took %v", d)
	}
}

// TestProducerCreateStream creates a missing stream and leaves an existing
// one alone.
func TestProducerCreateStream(t *testing.T) {
	env := harness.Kinesis(t)
	ctx := testCtx(t, time.Minute)
	name := harness.UniqueName(t)
	t.Cleanup(func() { deleteStream(t, env, name) })
	p, err := batch.Open(ctx, env.Client, name, batch.CreateStream(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, map[string]any{"hello": "world"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := openShards(t, env, name); n != 3 {
		t.Fatalf("created stream has %d shards", n)
	}
	// Again, with another shard count: the stream stays as it is.
	p, err = batch.Open(ctx, env.Client, name, batch.CreateStream(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := openShards(t, env, name); n != 3 {
		t.Fatalf("existing stream changed to %d shards", n)
	}
	got, _ := readItems(t, env, name, records.JSONProcessor())
	checkSameItems(t, []any{map[string]any{"hello": "world"}}, got, nil)
}

// TestProducerRejectsOversizeAtPut rejects an item too large for Kinesis
// and delivers the others.
func TestProducerRejectsOversizeAtPut(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	ctx := testCtx(t, time.Minute)
	proc := records.KPLStringProcessor()
	p, err := batch.Open(ctx, env.Client, stream, batch.WithProcessor(proc))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, records.MaxRecordSize)
	for i := range huge {
		huge[i] = 'x'
	}
	if err := p.Put(ctx, string(huge)); !errors.Is(err, batch.ErrInvalidRecord) || !errors.Is(err, records.ErrTooLarge) {
		t.Fatalf("oversize Put = %v", err)
	}
	if err := p.Put(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readItems(t, env, stream, proc)
	checkSameItems(t, []any{"a", "b"}, got, nil)
}
