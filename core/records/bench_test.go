package records

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

const benchBatch = 500

// benchItems returns benchBatch items of about 100 bytes serialized.
func benchItems(name string) []any {
	items := make([]any, benchBatch)
	for i := range items {
		if name == NameString || name == NameKPLString {
			s := fmt.Sprintf("item %06d ", i)
			items[i] = s + strings.Repeat("x", 100-len(s))
			continue
		}
		items[i] = map[string]any{"id": i, "user": fmt.Sprintf("u%d", i%50), "score": 0.5, "text": strings.Repeat("t", 48)}
	}
	return items
}

func perRecord(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "rec/s")
}

// BenchmarkEncode measures Serialize plus Aggregate per processor, for
// batches of 500 items of about 100 bytes.
func BenchmarkEncode(b *testing.B) {
	ctx := context.Background()
	for _, name := range Names() {
		p, _ := ByName(name)
		items := benchItems(name)
		b.Run(name, func(b *testing.B) {
			in := make([]UserRecord, benchBatch)
			var size int64
			b.ReportAllocs()
			for b.Loop() {
				data, err := p.Serializer.Serialize(ctx, items)
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for i, d := range data {
					in[i] = UserRecord{PartitionKey: "partition-key", Data: d}
					size += int64(len(d))
				}
				if _, err := p.Aggregator.Aggregate(ctx, in, MaxRecordSize); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(size)
			perRecord(b)
		})
	}
}

// BenchmarkDecode measures Deaggregate plus Deserialize per processor.
func BenchmarkDecode(b *testing.B) {
	ctx := context.Background()
	for _, name := range Names() {
		p, _ := ByName(name)
		out := encode(b, p, "partition-key", MaxRecordSize, benchItems(name)...)
		recs := make([]Record, len(out))
		var size int64
		for i, a := range out {
			recs[i] = Record{Data: a.Data, PartitionKey: a.PartitionKey, ShardID: "shardId-000000000000", SequenceNumber: "1"}
			size += int64(len(a.Data))
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			data := make([][]byte, benchBatch)
			for b.Loop() {
				users, err := p.Aggregator.Deaggregate(ctx, recs)
				if err != nil {
					b.Fatal(err)
				}
				for i, u := range users {
					data[i] = u.Data
				}
				if _, err := p.Serializer.Deserialize(ctx, data[:len(users)]); err != nil {
					b.Fatal(err)
				}
			}
			perRecord(b)
		})
	}
}

// BenchmarkKPL measures KPL aggregation and deaggregation alone on 100-byte
// records with 10 partition keys.
func BenchmarkKPL(b *testing.B) {
	ctx := context.Background()
	in := make([]UserRecord, benchBatch)
	for i := range in {
		in[i] = UserRecord{PartitionKey: fmt.Sprintf("key-%d", i%10), Data: []byte(strings.Repeat("d", 100))}
	}
	b.Run("aggregate", func(b *testing.B) {
		b.SetBytes(100 * benchBatch)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (KPLAggregator{}).Aggregate(ctx, in, MaxRecordSize); err != nil {
				b.Fatal(err)
			}
		}
		perRecord(b)
	})
	out, _ := KPLAggregator{}.Aggregate(ctx, in, MaxRecordSize)
	recs := []Record{{Data: out[0].Data, PartitionKey: out[0].PartitionKey}}
	b.Run("deaggregate", func(b *testing.B) {
		b.SetBytes(100 * benchBatch)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (KPLAggregator{}).Deaggregate(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
		perRecord(b)
	})
}
