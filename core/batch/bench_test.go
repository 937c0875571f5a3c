package batch

import (
	"fmt"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/records"
)

// BenchmarkProducerPipeline measures the producer alone: ~100-byte items
// through Put, routing, aggregation, limits and result handling to an
// in-memory fake (no network), with 4 shards and no limits in the way.
func BenchmarkProducerPipeline(b *testing.B) {
	for _, proc := range []records.Processor{records.StringProcessor(), records.KPLStringProcessor()} {
		for _, ordered := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/OrderPerKey=%v", proc.Name, ordered), func(b *testing.B) {
				f := newFake(testStream, 4)
				f.discard = true
				p, err := Open(b.Context(), f, testStream, WithProcessor(proc), OrderPerKey(ordered),
					PutRateLimit(1<<30), BandwidthLimit(1<<30), MaxQueueSize(100000))
				if err != nil {
					b.Fatal(err)
				}
				item := fmt.Sprintf("%0100d", 7)
				b.SetBytes(int64(len(item)))
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					if err := p.Put(b.Context(), item); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(b.Context()); err != nil {
					b.Fatal(err)
				}
				// Put to delivered, Close included.
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}
