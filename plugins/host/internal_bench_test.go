package host

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/abi"

	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

// BenchmarkInstantiate measures making one more instance of a loaded plugin
// (what the pool pays after a discard or recycle).
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	kpl, err := wasmbuild.Go("plugins/examples/kpl")
	if err != nil {
		b.Fatal(err)
	}
	rust, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		b.Fatal(err)
	}
	for name, path := range map[string]string{"kpl-go": kpl, "upper-rust": rust} {
		p, err := Load(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				inst, err := p.instantiate(ctx, false)
				if err != nil {
					b.Fatal(err)
				}
				inst.close(ctx)
			}
		})
		p.Close(ctx)
	}
}

// BenchmarkHostOverhead measures the host's own work per Handle call,
// without the guest: converting records, encoding the input batch into
// (what would be) guest memory, copying out, decoding and checking an
// all-OK output, and building the results.
func BenchmarkHostOverhead(b *testing.B) {
	for _, n := range []int{100, 500} {
		batch := make([]records.Record, n)
		for i := range batch {
			batch[i] = records.Record{Data: make([]byte, 100), PartitionKey: fmt.Sprintf("pk-%d", i), ShardID: "shardId-000000000000",
				SequenceNumber: "49590338271490256608559692538361571095921575989136588898"}
		}
		guestMem := make([]byte, 1<<20)
		outBuf, _ := (&abi.Batch{Op: abi.OpHandle}).Append(nil)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rp := getRecs(len(batch))
				recs := *rp
				for i := range batch {
					recs[i] = toABI(&batch[i])
				}
				in := abi.Batch{Op: abi.OpHandle, Records: recs}
				size := in.Size()
				if err := in.EncodeTo(guestMem[:size]); err != nil {
					b.Fatal(err)
				}
				raw := bytes.Clone(outBuf)
				var out abi.Batch
				if err := abi.Decode(raw, &out); err != nil {
					b.Fatal(err)
				}
				if err := abi.CheckOutput(&in, &out); err != nil {
					b.Fatal(err)
				}
				putRecs(rp)
				res := records.HandlerOutput{Results: make([]records.Result, len(batch))}
				_ = res
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
