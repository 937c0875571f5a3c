package host_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shardwork/shardwork/core/records"
)

// randomUserRecords makes n records with a mix of repeated and distinct
// keys, some explicit hash keys, empty and large data.
func randomUserRecords(rng *rand.Rand, n int) []records.UserRecord {
	out := make([]records.UserRecord, n)
	for i := range out {
		r := records.UserRecord{PartitionKey: fmt.Sprintf("key-%d", rng.IntN(20))}
		if rng.IntN(4) == 0 {
			r.ExplicitHashKey = fmt.Sprint(rng.Uint64())
		}
		size := rng.IntN(300)
		if rng.IntN(10) == 0 {
			size = rng.IntN(20000)
		}
		r.Data = make([]byte, size)
		for j := range r.Data {
			r.Data[j] = byte(rng.IntN(256))
		}
		out[i] = r
	}
	return out
}

func sameAggregates(t *testing.T, what string, wasm, native []records.Aggregated) {
	t.Helper()
	if len(wasm) != len(native) {
		t.Fatalf("%s: wasm made %d records, native %d", what, len(wasm), len(native))
	}
	for i := range wasm {
		w, n := wasm[i], native[i]
		if w.PartitionKey != n.PartitionKey || w.ExplicitHashKey != n.ExplicitHashKey || w.Count != n.Count || !bytes.Equal(w.Data, n.Data) {
			t.Fatalf("%s: record %d differs: wasm key %q count %d len %d, native key %q count %d len %d", what, i, w.PartitionKey, w.Count, len(w.Data), n.PartitionKey, n.Count, len(n.Data))
		}
	}
}

// TestKPLMatchesNative: the WASM KPL aggregator and core/records'
// KPLAggregator make the same bytes, counts and sizes, on the reference
// vectors and on random batches with several size limits.
func TestKPLMatchesNative(t *testing.T) {
	p := load(t, build(t, "plugins/examples/kpl"))
	wasm, _ := p.Aggregator()
	native := records.KPLAggregator{}
	ctx := context.Background()
	for _, c := range kplVectors(t) {
		var in []records.UserRecord
		for _, u := range c.UserRecords {
			in = append(in, u.user(t))
		}
		w, err := wasm.Aggregate(ctx, in, c.MaxSize)
		if err != nil {
			t.Fatal(err)
		}
		n, err := native.Aggregate(ctx, in, c.MaxSize)
		if err != nil {
			t.Fatal(err)
		}
		sameAggregates(t, c.Name, w, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		in := randomUserRecords(rng, 300)
		for _, max := range []int{records.MaxRecordSize, 64 << 10, 4096} {
			w, werr := wasm.Aggregate(ctx, in, max)
			n, nerr := native.Aggregate(ctx, in, max)
			wi, wb := records.SplitErrors(werr)
			ni, nb := records.SplitErrors(nerr)
			if wb != nil || nb != nil || len(wi) != len(ni) {
				t.Fatalf("round %d max %d: wasm %v, native %v", round, max, werr, nerr)
			}
			for i := range wi {
				if wi[i].Index != ni[i].Index {
					t.Fatalf("round %d max %d: oversize item %d vs %d", round, max, wi[i].Index, ni[i].Index)
				}
			}
			sameAggregates(t, fmt.Sprintf("round %d max %d", round, max), w, n)
		}
		for _, r := range in[:20] {
			if a, b := wasm.SizeAlone(r), native.SizeAlone(r); a != b {
				t.Fatalf("SizeAlone: wasm %d native %d", a, b)
			}
		}
	}
}

// TestMsgpackMatchesNative: the WASM netstring aggregator and msgpack
// serializer agree with core/records' NetstringAggregator and
// MsgpackSerializer (on items whose encoding does not depend on map order,
// since the native serializer sorts keys and the plugin keeps JSON order).
func TestMsgpackMatchesNative(t *testing.T) {
	p := load(t, build(t, "plugins/examples/msgpack"))
	wasmAgg, _ := p.Aggregator()
	wasmSer, _ := p.Serializer()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	in := randomUserRecords(rng, 300)
	for _, max := range []int{records.MaxRecordSize, 4096} {
		w, werr := wasmAgg.Aggregate(ctx, in, max)
		n, nerr := records.NetstringAggregator{}.Aggregate(ctx, in, max)
		if _, b := records.SplitErrors(werr); b != nil {
			t.Fatal(werr)
		}
		if _, b := records.SplitErrors(nerr); b != nil {
			t.Fatal(nerr)
		}
		sameAggregates(t, fmt.Sprintf("netstring max %d", max), w, n)
	}
	items := []any{"x", "héllo", 0, 1, -1, 127, 128, 255, 256, 65535, 65536, -33, -129, 1 << 40, -(1 << 40), 1.5, -0.25, true, false, nil,
		[]any{1, "a", []any{}}, map[string]any{"test": 123}, map[string]any{"test": 456}, map[string]any{"k": []any{map[string]any{"z": nil}}}}
	w, err := wasmSer.Serialize(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	n, err := records.MsgpackSerializer{}.Serialize(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if !bytes.Equal(w[i], n[i]) {
			t.Errorf("item %d (%v): wasm %x, native %x", i, items[i], w[i], n[i])
		}
	}
}
