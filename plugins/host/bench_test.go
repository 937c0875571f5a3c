package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

func benchBatch(n int) []records.Record {
	out := make([]records.Record, n)
	for i := range out {
		out[i] = records.Record{Data: []byte(fmt.Sprintf(`{"level":"error","i":%d,"text":"some payload of a typical size"}`, i)),
			PartitionKey: fmt.Sprintf("pk-%d", i), ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(49000000 + i)}
	}
	return out
}

func modes() []struct {
	name string
	opts []host.Option
} {
	return []struct {
		name string
		opts []host.Option
	}{{"sandboxed", nil}, {"trusted", []host.Option{host.WithTrusted()}}}
}

// BenchmarkHandle measures one Handle call per batch: ns/record over a guest
// that does nothing (noop, Go) is the host + SDK overhead per record; the
// Rust upper plugin adds a little real work with a far smaller runtime.
func BenchmarkHandle(b *testing.B) {
	rust, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		b.Fatal(err)
	}
	plugins := map[string]string{"noop-go": build(b, "plugins/host/testdata/noop"), "upper-rust": rust, "enrich-go": build(b, "plugins/examples/enrich")}
	for _, name := range []string{"noop-go", "upper-rust", "enrich-go"} {
		for _, m := range modes() {
			p := load(b, plugins[name], m.opts...)
			h, _ := p.Handler()
			for _, n := range []int{1, 100, 500} {
				batch := benchBatch(n)
				b.Run(fmt.Sprintf("%s/%s/records=%d", name, m.name, n), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := h.Handle(context.Background(), batch); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				})
			}
		}
	}
}

// BenchmarkHandleEvent measures the enrich plugin over one 10,000-record
// batch, the size of the largest Kinesis event a Lambda function receives
// (target: ≤ 100 ms warm, i.e. ≤ 10 µs per record end to end).
func BenchmarkHandleEvent(b *testing.B) {
	path := build(b, "plugins/examples/enrich")
	batch := benchBatch(10000)
	for _, m := range modes() {
		p := load(b, path, m.opts...)
		h, _ := p.Handler()
		b.Run("enrich-go/"+m.name+"/records=10000", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := h.Handle(context.Background(), batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(out.Emit) != len(batch) {
					b.Fatalf("%d records emitted, want %d", len(out.Emit), len(batch))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/event")
		})
	}
}

// BenchmarkKPLAggregate compares the WASM KPL aggregator, sandboxed and
// trusted, with core/records' native KPLAggregator on 500 records of 1 KB.
func BenchmarkKPLAggregate(b *testing.B) {
	in := make([]records.UserRecord, 500)
	for i := range in {
		in[i] = records.UserRecord{PartitionKey: fmt.Sprintf("pk-%d", i%50), Data: make([]byte, 1000)}
	}
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(500 * 1000)
		for b.Loop() {
			if _, err := (records.KPLAggregator{}).Aggregate(context.Background(), in, records.MaxRecordSize); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, m := range modes() {
		p := load(b, build(b, "plugins/examples/kpl"), m.opts...)
		a, _ := p.Aggregator()
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(500 * 1000)
			for b.Loop() {
				if _, err := a.Aggregate(context.Background(), in, records.MaxRecordSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMsgpackSerialize compares the WASM msgpack serializer (which
// transcodes the items' JSON) with core/records' native MsgpackSerializer.
func BenchmarkMsgpackSerialize(b *testing.B) {
	items := make([]any, 500)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"id":%d,"user":"u%d","score":0.672387,"tags":["b","c"],"text":"é✓é✓é✓é✓","nested":{"k":760360219,"n":null,"t":true}}`, i, i%50))
	}
	native := make([]any, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it.(json.RawMessage), &native[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (records.MsgpackSerializer{}).Serialize(context.Background(), native); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/item")
	})
	for _, m := range modes() {
		p := load(b, build(b, "plugins/examples/msgpack"), m.opts...)
		s, _ := p.Serializer()
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Serialize(context.Background(), items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/item")
		})
	}
}

// BenchmarkCompile: cold compilation versus loading compiled code from the
// on-disk cache that Compile fills.
func BenchmarkCompile(b *testing.B) {
	rust, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		b.Fatal(err)
	}
	for name, path := range map[string]string{"kpl-go": build(b, "plugins/examples/kpl"), "upper-rust": rust} {
		code, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.Run(name+"/uncached", func(b *testing.B) {
			for b.Loop() {
				r := wazero.NewRuntime(ctx)
				if _, err := r.CompileModule(ctx, code); err != nil {
					b.Fatal(err)
				}
				r.Close(ctx)
			}
		})
		dir := b.TempDir()
		if err := host.Compile(ctx, path, dir); err != nil {
			b.Fatal(err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/cached", func(b *testing.B) {
			for b.Loop() {
				r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
				if _, err := r.CompileModule(ctx, code); err != nil {
					b.Fatal(err)
				}
				r.Close(ctx)
			}
		})
		// Load = cached compile + checks + first instance (the cold-start cost).
		if p, err := host.Load(ctx, path, host.WithCacheDir(dir)); err != nil {
			b.Fatal(err)
		} else {
			p.Close(ctx)
		}
		b.Run(name+"/load-cached", func(b *testing.B) {
			for b.Loop() {
				p, err := host.Load(ctx, path, host.WithCacheDir(dir))
				if err != nil {
					b.Fatal(err)
				}
				p.Close(ctx)
			}
		})
	}
}
