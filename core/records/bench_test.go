package records

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

const benchBatch = 500

var benchSizes = []int{100, 1000}

// benchItems returns benchBatch items of about size bytes serialized.
func benchItems(name string, size int) []any {
	items := make([]any, benchBatch)
	for i := range items {
		if name == NameString || name == NameKPLString {
			s := fmt.Sprintf("item %06d ", i)
			items[i] = s + strings.Repeat("x", size-len(s))
			continue
		}
		items[i] = map[string]any{"id": i, "user": fmt.Sprintf("u%d", i%50), "score": 0.5, "text": strings.Repeat("t", size-52)}
	}
	return items
}

// measure runs f b.N times and reports records/s and allocations per
// record.
func measure(b *testing.B, f func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		f()
		n++
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n)*benchBatch/b.Elapsed().Seconds(), "rec/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*benchBatch), "allocs/rec")
}

// BenchmarkEncode measures Serialize plus Aggregate per processor, for
// batches of 500 items of about 100 bytes and 1 KB.
func BenchmarkEncode(b *testing.B) {
	ctx := context.Background()
	for _, name := range Names() {
		for _, itemSize := range benchSizes {
			p, _ := ByName(name)
			items := benchItems(name, itemSize)
			b.Run(fmt.Sprintf("%s/%dB", name, itemSize), func(b *testing.B) {
				in := make([]UserRecord, benchBatch)
				var size int64
				measure(b, func() {
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
				})
				b.SetBytes(size)
			})
		}
	}
}

// BenchmarkDecode measures Deaggregate plus Deserialize per processor.
func BenchmarkDecode(b *testing.B) {
	ctx := context.Background()
	for _, name := range Names() {
		for _, itemSize := range benchSizes {
			p, _ := ByName(name)
			out := encode(b, p, "partition-key", MaxRecordSize, benchItems(name, itemSize)...)
			recs := make([]Record, len(out))
			var size int64
			for i, a := range out {
				recs[i] = Record{Data: a.Data, PartitionKey: a.PartitionKey, ShardID: "shardId-000000000000", SequenceNumber: "1"}
				size += int64(len(a.Data))
			}
			b.Run(fmt.Sprintf("%s/%dB", name, itemSize), func(b *testing.B) {
				b.SetBytes(size)
				data := make([][]byte, benchBatch)
				measure(b, func() {
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
				})
			})
		}
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
		measure(b, func() {
			if _, err := (KPLAggregator{}).Aggregate(ctx, in, MaxRecordSize); err != nil {
				b.Fatal(err)
			}
		})
	})
	out, _ := KPLAggregator{}.Aggregate(ctx, in, MaxRecordSize)
	recs := []Record{{Data: out[0].Data, PartitionKey: out[0].PartitionKey}}
	b.Run("deaggregate", func(b *testing.B) {
		b.SetBytes(100 * benchBatch)
		measure(b, func() {
			if _, err := (KPLAggregator{}).Deaggregate(ctx, recs); err != nil {
				b.Fatal(err)
			}
		})
	})
}
