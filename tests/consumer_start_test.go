package tests

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// Seed acceptance case 4: TRIM_HORIZON reads everything, with metadata.
func TestConsumerTrimHorizonReadsEverything(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 2)
	entries, items := jsonEntries(t, "th", 600, 37)
	seqs := putEntries(t, env, stream, entries)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newConsumer(t, env, stream)
	got := collectN(t, ctx, c, len(items))

	bySeq := map[string]int{}
	for i, s := range seqs {
		bySeq[s] = i
	}
	seen := map[int]bool{}
	lastSeq := map[string]string{}
	for _, rec := range got {
		i, ok := bySeq[rec.SequenceNumber]
		if !ok {
			t.Fatalf("record with unknown sequence number %s", rec.SequenceNumber)
		}
		if seen[i] {
			t.Fatalf("record %d delivered twice", i)
		}
		seen[i] = true
		it := decodeItem(t, rec)
		if it != items[i] {
			t.Fatalf("record %s holds %+v, want %+v", rec.SequenceNumber, it, items[i])
		}
		m, ok := rec.Value.(map[string]any)
		if !ok || m["id"] != items[i].ID {
			t.Fatalf("record %s decoded value %#v, want id %s", rec.SequenceNumber, rec.Value, items[i].ID)
		}
		if rec.PartitionKey != items[i].Key || rec.ShardID == "" || rec.ArrivalTime.IsZero() || rec.SubSequenceNumber != 0 {
			t.Fatalf("record metadata %+v", rec.Record)
		}
		if prev := lastSeq[rec.ShardID]; prev != "" && !seqLess(prev, rec.SequenceNumber) {
			t.Fatalf("shard %s: %s delivered after %s", rec.ShardID, rec.SequenceNumber, prev)
		}
		lastSeq[rec.ShardID] = rec.SequenceNumber
	}
	if len(lastSeq) != 2 {
		t.Fatalf("records came from %d shards, want 2", len(lastSeq))
	}
}

// Seed acceptance case 4: LATEST reads only what is written after the
// consumer is positioned.
func TestConsumerLatestReadsOnlyNewRecords(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 2)
	old, _ := jsonEntries(t, "old", 100, 10)
	putEntries(t, env, stream, old)

	ready := make(chan string, 4)
	c := newConsumer(t, env, stream, shards.StartAt(shards.Latest, time.Time{}), shards.OnLease(func(ev shards.LeaseEvent) {
		if ev.Acquired {
			ready <- ev.Shard
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fresh, items := jsonEntries(t, "new", 150, 10)
	go func() {
		for range 2 {
			select {
			case <-ready:
			case <-ctx.Done():
				return
			}
		}
		if _, err := tryPutEntries(ctx, env, stream, fresh); err != nil {
			t.Error(err)
			cancel()
		}
	}()
	got := collectN(t, ctx, c, len(items))
	ids := map[string]bool{}
	for _, rec := range got {
		it := decodeItem(t, rec)
		if ids[it.ID] {
			t.Fatalf("%s delivered twice", it.ID)
		}
		ids[it.ID] = true
	}
	for _, it := range items {
		if !ids[it.ID] {
			t.Fatalf("%s not delivered (got %d records, old ones among them?)", it.ID, len(got))
		}
	}
}

// Seed acceptance case 4: AT_TIMESTAMP starts at the first record that
// arrived at or after the timestamp.
func TestConsumerAtTimestamp(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	first, _ := jsonEntries(t, "a", 50, 5)
	putEntries(t, env, stream, first)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	// Arrival times have millisecond resolution: let the clock move past
	// the last record's, so the second batch arrives strictly later.
	lastArrival := aws.ToTime(before[len(before)-1].ApproximateArrivalTimestamp)
	time.Sleep(time.Until(lastArrival.Add(5 * time.Millisecond)))
	second, _ := jsonEntries(t, "b", 70, 5)
	putEntries(t, env, stream, second)
	all, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	ts := aws.ToTime(all[len(before)].ApproximateArrivalTimestamp)
	var want []string
	for _, r := range all {
		if !aws.ToTime(r.ApproximateArrivalTimestamp).Before(ts) {
			want = append(want, aws.ToString(r.SequenceNumber))
		}
	}
	if len(want) != len(second) {
		t.Fatalf("%d records arrived at or after %v, want the %d of the second batch", len(want), ts, len(second))
	}
	c := newConsumer(t, env, stream, shards.StartAt(shards.AtTimestamp, ts))
	got := collectN(t, ctx, c, len(want))
	var gotSeqs []string
	for _, rec := range got {
		gotSeqs = append(gotSeqs, rec.SequenceNumber)
	}
	if !slices.Equal(gotSeqs, want) {
		t.Fatalf("AT_TIMESTAMP delivered %v, want %v", gotSeqs, want)
	}
}

// Seed acceptance case 4: after a clean stop, a new consumer on the same
// store yields exactly the records after the checkpoint.
func TestConsumerResumesAfterCheckpoint(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	entries, items := jsonEntries(t, "r", 120, 3)
	seqs := putEntries(t, env, stream, entries)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c1 := newConsumer(t, env, stream)
	got1 := collectN(t, ctx, c1, 45) // break after the 45th: it counts as finished
	cp, err := c1.Store().Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if cp.SequenceNumber != seqs[44] || !cp.Complete {
		t.Fatalf("checkpoint after 45 records = %+v, want complete at %s", cp, seqs[44])
	}
	c2 := newConsumer(t, env, stream, shards.Checkpointer(c1.Store()))
	got2 := collectN(t, ctx, c2, len(items)-45)
	for i, rec := range append(got1, got2...) {
		if rec.SequenceNumber != seqs[i] {
			t.Fatalf("record %d: sequence %s, want %s", i, rec.SequenceNumber, seqs[i])
		}
	}
}
