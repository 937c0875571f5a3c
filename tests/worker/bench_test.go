package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardwork/shardwork/tests/harness"
)

// BenchmarkProduce1KB measures the produce command end to end (process
// start, reading, serializing, aggregating, PutRecords to kinesalite, final
// flush) for a file of 1 KB JSON lines into a 4-shard stream. The per-shard
// limits are raised: kinesalite enforces none, and the defaults (1 MiB/s per
// shard) would measure the limiter instead of the binary.
func BenchmarkProduce1KB(b *testing.B) {
	const n = 20000
	e := harness.Kinesis(b)
	input := writeLines(b, testLines(n, 1024))
	st, _ := os.Stat(input)
	for _, proc := range []string{"jsonlines", "kpl-json", "json"} {
		b.Run(proc, func(b *testing.B) {
			stream := e.NewStream(b, 4)
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				r := worker(b, kinesisEnv(e), nil, "produce", "--stream", stream, "--input", input, "--processor", proc,
					"--summary", "json", "--put-rate-limit", "1000000", "--bandwidth-limit", "1000000000")
				total += time.Since(start)
				if r.code != 0 {
					b.Fatalf("produce: exit %d: %s", r.code, r.stderr)
				}
				if s := parseSummary(b, r.stdout); s.Delivered != n {
					b.Fatalf("delivered %d of %d", s.Delivered, n)
				}
			}
			sec := total.Seconds() / float64(b.N)
			b.ReportMetric(float64(n)/sec, "records/s")
			b.ReportMetric(float64(st.Size())/sec/1e6, "MB/s")
		})
	}
}

// rssKiB reads a process's resident set (VmRSS) and peak (VmHWM) in KiB.
func rssKiB(pid int) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			peak = v
		}
	}
	return rss, peak
}

// BenchmarkWorkerRSS runs `worker run` with default settings on a pipeline
// that copies 1 KB records from a 4-shard stream into another while 40,000
// records flow through, and reports its resident memory once it has caught
// up (steady state) and its peak.
func BenchmarkWorkerRSS(b *testing.B) {
	e := harness.Kinesis(b)
	for b.Loop() {
		in, out := e.NewStream(b, 4), e.NewStream(b, 4)
		cfg := writeFile(b, "worker.yaml", fmt.Sprintf(`
endpoint: %s
listen: 127.0.0.1:0
pipelines:
  - name: copy
    stream: %s
    processor: jsonlines
    output_stream: %s
`, e.Endpoint, in, out))
		w := startWorker(b, nil, "run", "--config", cfg)
		waitFor(b, 30*time.Second, "ready", func() bool { return w.health().Ready })
		const n = 40000
		r := worker(b, kinesisEnv(e), nil, "produce", "--stream", in, "--input", writeLines(b, testLines(n, 1024)),
			"--processor", "jsonlines", "--summary", "json")
		if r.code != 0 {
			b.Fatalf("produce: %s", r.stderr)
		}
		waitFor(b, 120*time.Second, "the worker to copy every record", func() bool {
			v, _ := metricValue(w.scrape(), "shardwork_producer_records_total", nil)
			return v >= n
		})
		rss, peak := rssKiB(w.cmd.Process.Pid)
		b.ReportMetric(float64(rss)/1024, "MiB-rss-steady")
		b.ReportMetric(float64(peak)/1024, "MiB-rss-peak")
		if code, _ := w.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
			b.Fatalf("worker exit %d", code)
		}
	}
}

// BenchmarkTimeToFirstRecord measures from starting `worker consume` with
// the enrich handler plugin (compiled ahead of time into the plugin cache)
// to the first record it delivers on stdout.
func BenchmarkTimeToFirstRecord(b *testing.B) {
	e := harness.Kinesis(b)
	enrich := examplePlugin(b, "enrich")
	cache := b.TempDir()
	if r := worker(b, nil, nil, "plugin", "compile", "--plugin-cache-dir", cache, enrich); r.code != 0 {
		b.Fatalf("plugin compile: %s", r.stderr)
	}
	stream := e.NewStream(b, 1)
	if r := worker(b, kinesisEnv(e), []byte(`{"id":1,"level":"error"}`+"\n"), "produce", "--stream", stream, "--processor", "jsonlines"); r.code != 0 {
		b.Fatalf("produce: %s", r.stderr)
	}
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, workerBin, "consume", "--stream", stream, "--processor", "jsonlines",
			"--handler", enrich, "--plugin-cache-dir", cache, "--max-records", "1")
		cmd.Env = append(baseEnv(), kinesisEnv(e)...)
		stdout, _ := cmd.StdoutPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		took := time.Since(start)
		if err != nil || !strings.Contains(line, `"_shard"`) {
			b.Fatalf("first line %q: %v", line, err)
		}
		total += took
		if err := cmd.Wait(); err != nil {
			b.Fatalf("consume: %v", err)
		}
		cancel()
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms-to-first-record")
}
