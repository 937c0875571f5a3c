package lambda

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardwork/shardwork/tests/harness"
)

// BenchmarkColdStart measures the consumer's init duration (from the
// emulator's INIT REPORT) with the enrich plugin: loaded from the shipped
// precompiled cache, or compiled at cold start into an empty cache.
func BenchmarkColdStart(b *testing.B) {
	kin := harness.Kinesis(b)
	dir := pluginPackage(b)
	ev := kinesisEventJSON(b, 1)
	for _, c := range []struct {
		name string
		env  func() []string
	}{
		{"precompiled", func() []string {
			return []string{"LAMBDA_TASK_ROOT=" + dir, "SHARDWORK_HANDLER_PLUGIN=plugins/enrich.wasm"}
		}},
		{"precompiled-trusted", func() []string {
			return []string{"LAMBDA_TASK_ROOT=" + dir, "SHARDWORK_HANDLER_PLUGIN=plugins/enrich.wasm", "SHARDWORK_PLUGIN_TRUSTED=true"}
		}},
		{"compile", func() []string {
			return []string{"SHARDWORK_PLUGIN_CACHE=" + b.TempDir(), "SHARDWORK_HANDLER_PLUGIN=" + filepath.Join(dir, "plugins", "enrich.wasm")}
		}},
		{"no-plugin", func() []string { return []string{"SHARDWORK_BUILTIN_HANDLER=discard"} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				fn := function(b, kin, "consumer", append(c.env(), "SHARDWORK_PROCESSOR=kpl-json")...)
				invoke(b, fn, ev, nil)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				reps, err := fn.WaitReports(ctx, 1)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				if !reps[0].Cold {
					b.Fatalf("no init duration in %+v", reps[0])
				}
				total += reps[0].InitDuration
				fn.Stop()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "init-ms")
		})
	}
}

// BenchmarkWarm10k measures a warm invocation of the consumer with a
// 10,000-record Kinesis event: ns/op is the whole round trip through the
// emulator, report-ms the function's Duration from its REPORT lines.
func BenchmarkWarm10k(b *testing.B) {
	kin := harness.Kinesis(b)
	dir := pluginPackage(b)
	ev := kinesisEventJSON(b, 10000)
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"enrich-plugin", []string{"LAMBDA_TASK_ROOT=" + dir, "SHARDWORK_HANDLER_PLUGIN=plugins/enrich.wasm"}},
		{"enrich-plugin-trusted", []string{"LAMBDA_TASK_ROOT=" + dir, "SHARDWORK_HANDLER_PLUGIN=plugins/enrich.wasm", "SHARDWORK_PLUGIN_TRUSTED=true"}},
		{"builtin-discard", []string{"SHARDWORK_BUILTIN_HANDLER=discard"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			fn := function(b, kin, "consumer", append(c.env, "SHARDWORK_PROCESSOR=kpl-json")...)
			var resp batchResponse
			invoke(b, fn, ev, &resp) // cold start, not measured
			if len(resp.BatchItemFailures) != 0 {
				b.Fatalf("failures %v", resp.ids())
			}
			n := 0
			for b.Loop() {
				invoke(b, fn, ev, nil)
				n++
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			reps, err := fn.WaitReports(ctx, 1+n)
			if err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for _, r := range reps[1:] {
				total += r.Duration
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "report-ms")
		})
	}
}
