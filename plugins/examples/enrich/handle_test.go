package main

import (
	"fmt"
	"strings"
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
// batch, as the host benchmarks do under WebAssembly.
func BenchmarkInvokeHandle(b *testing.B) {
	for _, n := range []int{500, 10000} {
		in := handleBatch(n)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := guest.Invoke(abi.OpHandle, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// TestInvokeHandle runs the handle entry point natively: emitted records are
// built in scratch memory and must survive until the output is encoded.
func TestInvokeHandle(t *testing.T) {
	in := abi.Batch{Op: abi.OpHandle}
	datas := []string{`{"level":"error","n":1}`, `{"type":"heartbeat"}`, `{"level":"info"}`, `{"level":"warn","s":"` + strings.Repeat("x", 40000) + `"}`, `{"a":`, `{"level":"error","n":2}`}
	for i, d := range datas {
		in.Records = append(in.Records, abi.Record{Data: []byte(d), PartitionKey: fmt.Appendf(nil, "pk%d", i), ShardID: []byte("shardId-000000000000"), SequenceNumber: fmt.Append(nil, i)})
	}
	buf, _ := in.Append(nil)
	for range 2 { // the second call reuses the scratch memory
		raw, err := guest.Invoke(abi.OpHandle, buf)
		if err != nil {
			t.Fatal(err)
		}
		var out abi.Batch
		if err := abi.Decode(raw, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Records) != 3 {
			t.Fatalf("%d records emitted, want 3", len(out.Records))
		}
		for j, i := range []int{0, 3, 5} {
			want, _ := enr.process([]byte(datas[i]), Meta{ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(i), PartitionKey: fmt.Sprintf("pk%d", i)})
			if string(out.Records[j].Data) != string(want.Out) || string(out.Records[j].PartitionKey) != fmt.Sprintf("pk%d", i) {
				t.Fatalf("emitted %d: %.80s (key %s), want %.80s", j, out.Records[j].Data, out.Records[j].PartitionKey, want.Out)
			}
		}
		if len(out.Results) != 2 || out.Results[0].Status != abi.StatusSkip || out.Results[1].Index != 4 || out.Results[1].Status != abi.StatusFail ||
			!strings.Contains(string(out.Results[1].Message), "record 4/0: invalid JSON") {
			t.Fatalf("results %+v", out.Results)
		}
	}
}
