package main

import (
	"fmt"
	"testing"

	"github.com/shardwork/shardwork/plugins/abi"
	"github.com/shardwork/shardwork/plugins/abi/guest"
)

func handleBatch(n int) []byte {
	in := abi.Batch{Op: abi.OpHandle}
	for i := range n {
		in.Records = append(in.Records, abi.Record{Data: fmt.Appendf(nil, `{"level":"error","i":%d,"text":"some payload of a typical size"}`, i),
			PartitionKey: fmt.Appendf(nil, "pk-%d", i), ShardID: []byte("shardId-000000000000"), SequenceNumber: fmt.Append(nil, 49000000+i)})
	}
	b, err := in.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkInvokeHandle runs the plugin's handle entry point natively over a
// 500-record batch, as the host benchmark does under WebAssembly.
func BenchmarkInvokeHandle(b *testing.B) {
	in := handleBatch(500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := guest.Invoke(abi.OpHandle, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/record")
}
