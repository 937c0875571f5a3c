package tests

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// aggregate packs items with the processor, per group of `per` items, into
// Kinesis record entries.
func aggregate(t testing.TB, p records.Processor, items []testItem, per int) []types.PutRecordsRequestEntry {
	t.Helper()
	ctx := context.Background()
	var entries []types.PutRecordsRequestEntry
	for lo := 0; lo < len(items); lo += per {
		group := items[lo:min(lo+per, len(items))]
		vals := make([]any, len(group))
		for i, it := range group {
			vals[i] = map[string]any{"id": it.ID, "key": it.Key, "n": it.N}
		}
		data, err := p.Serializer.Serialize(ctx, vals)
		if err != nil {
			t.Fatal(err)
		}
		urs := make([]records.UserRecord, len(group))
		for i, it := range group {
			urs[i] = records.UserRecord{PartitionKey: it.Key, Data: data[i]}
		}
		aggs, err := p.Aggregator.Aggregate(ctx, urs, records.MaxRecordSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(aggs) != 1 {
			t.Fatalf("%d items packed into %d records, want 1", len(group), len(aggs))
		}
		e := types.PutRecordsRequestEntry{Data: aggs[0].Data, PartitionKey: aws.String(aggs[0].PartitionKey)}
		if aggs[0].ExplicitHashKey != "" {
			e.ExplicitHashKey = aws.String(aggs[0].ExplicitHashKey)
		}
		entries = append(entries, e)
	}
	return entries
}

func makeItems(prefix string, n, keys int) []testItem {
	items := make([]testItem, n)
	for i := range items {
		items[i] = testItem{ID: prefix + "-" + itoa(i), Key: "key-" + itoa(i%keys), N: i}
	}
	return items
}

func itoa(i int) string { return idOf(i)[2:] }

// Seed acceptance case 4 with aggregation: a clean stop in the middle of
// a KPL aggregate resumes at the next user record inside it: nothing is
// skipped or repeated.
func TestConsumerResumesInsideAggregate(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	items := makeItems("kpl", 100, 7)
	p := records.KPLJSONProcessor()
	seqs := putEntries(t, env, stream, aggregate(t, p, items, 20))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c1 := newConsumer(t, env, stream, shards.Processor(p))
	got1 := collectN(t, ctx, c1, 47)
	cp, err := c1.Store().Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	// Record 47 (index 46) is user record 6 of the third aggregate.
	if cp.SequenceNumber != seqs[2] || cp.SubSequenceNumber != 6 || cp.Complete {
		t.Fatalf("checkpoint %+v, want sequence %s sub-sequence 6, not complete", cp, seqs[2])
	}
	c2 := newConsumer(t, env, stream, shards.Processor(p), shards.Checkpointer(c1.Store()))
	got2 := collectN(t, ctx, c2, len(items)-47)
	for i, rec := range append(got1, got2...) {
		if it := decodeItem(t, rec); it != items[i] {
			t.Fatalf("record %d = %+v, want %+v", i, it, items[i])
		}
		if rec.SequenceNumber != seqs[i/20] || rec.SubSequenceNumber != int64(i%20) || !rec.Aggregated {
			t.Fatalf("record %d at %s/%d (aggregated %v), want %s/%d", i, rec.SequenceNumber, rec.SubSequenceNumber, rec.Aggregated, seqs[i/20], i%20)
		}
		if rec.PartitionKey != items[i].Key {
			t.Fatalf("record %d partition key %q, want %q", i, rec.PartitionKey, items[i].Key)
		}
	}
	// After the last record of an aggregate the checkpoint is complete.
	cp, err = c2.Store().Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if cp.SequenceNumber != seqs[4] || cp.SubSequenceNumber != 19 || !cp.Complete {
		t.Fatalf("final checkpoint %+v, want complete at %s/19", cp, seqs[4])
	}
}

// Corrupt aggregates (a KPL record with a bad MD5, a broken netstring)
// among good ones: the good ones are delivered, the bad one is reported
// with its sequence number, and the shard moves on.
func TestConsumerCorruptAggregateIsReported(t *testing.T) {
	cases := []struct {
		name    string
		proc    records.Processor
		corrupt func([]byte) []byte
	}{
		{"kpl-bad-md5", records.KPLJSONProcessor(), func(b []byte) []byte {
			b = slices.Clone(b)
			b[len(b)-1] ^= 0xff
			return b
		}},
		{"netstring-bad-length", records.MsgpackProcessor(), func(b []byte) []byte {
			return append([]byte("9"), b...) // the first length grows past the data
		}},
		{"netstring-no-comma", records.MsgpackProcessor(), func(b []byte) []byte {
			b = slices.Clone(b)
			b[len(b)-1] = ';'
			return b
		}},
	}
	env := harness.Kinesis(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := env.NewStream(t, 1)
			items := makeItems(tc.name, 60, 5)
			entries := aggregate(t, tc.proc, items, 10)
			entries[2].Data = tc.corrupt(entries[2].Data)
			seqs := putEntries(t, env, stream, entries)
			want := append(slices.Clone(items[:20]), items[30:]...)

			var errs errorLog
			c := newConsumer(t, env, stream, shards.Processor(tc.proc), shards.ErrorCallback(errs.add))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got := collectN(t, ctx, c, len(want))
			for i, rec := range got {
				var it testItem
				m, ok := rec.Value.(map[string]any)
				if !ok {
					t.Fatalf("record %d value %#v", i, rec.Value)
				}
				it.ID, _ = m["id"].(string)
				if it.ID != want[i].ID {
					t.Fatalf("record %d is %s, want %s", i, it.ID, want[i].ID)
				}
			}
			var bad []*shards.RecordError
			for _, err := range errs.all() {
				var re *shards.RecordError
				if errors.As(err, &re) && errors.Is(err, shards.ErrDecode) {
					bad = append(bad, re)
				}
			}
			if len(bad) != 1 || bad[0].SequenceNumber != seqs[2] {
				t.Fatalf("decode errors %v, want one for %s", bad, seqs[2])
			}
			if !errors.Is(bad[0], records.ErrMalformed) {
				t.Errorf("decode error %v does not wrap records.ErrMalformed", bad[0])
			}
		})
	}
}
