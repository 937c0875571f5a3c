package tests

import (
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

// BenchmarkProducerKinesalite puts ~1 KB items with random keys through each
// processor into a 1-shard kinesalite stream (no limits on either side) and
// reports records/s and MB/s (serialized item bytes) from the first Put to
// the end of Close. ns/op is the time Put takes.
func BenchmarkProducerKinesalite(b *testing.B) {
	env := harness.Kinesis(b)
	for _, name := range records.Names() {
		b.Run(name, func(b *testing.B) {
			proc, err := records.ByName(name)
			if err != nil {
				b.Fatal(err)
			}
			stream := env.NewStream(b, 1)
			ctx := testCtx(b, 10*time.Minute)
			p, err := batch.Open(ctx, env.Client, stream, append(unlimited, batch.WithProcessor(proc))...)
			if err != nil {
				b.Fatal(err)
			}
			item := producerItem(name, 1, 1000, "")
			size, err := proc.Serializer.Serialize(ctx, []any{item})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				if err := p.Put(ctx, item); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(n*len(size[0]))/1e6/elapsed.Seconds(), "MB/s")
			st := p.Stats()
			b.ReportMetric(float64(st.Requests), "calls")
		})
	}
}
