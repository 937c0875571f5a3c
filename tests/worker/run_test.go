package worker_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardwork/shardwork/tests/harness"
)

// runConfig writes a worker.yaml with one pipeline from in to out.
func runConfig(t *testing.T, e *harness.Env, redisURL, app, in, out, extra string) string {
	return writeFile(t, "worker.yaml", fmt.Sprintf(`
endpoint: %s
redis_url: %s
listen: 127.0.0.1:0
checkpointer: redis
heartbeat_frequency: 300ms
session_timeout: 20s
shutdown_timeout: 20s
sleep_when_caught_up: 100ms
shard_fetch_rate: 5
log_level: info
pipelines:
  - name: copy
    app: %s
    stream: %s
    processor: jsonlines
    output_stream: %s
%s`, e.Endpoint, redisURL, app, in, out, extra))
}

func heldShards(h healthz) []string { return h.Pipelines["copy"] }

// TestRunTwoWorkersHandover runs two workers on a 4-shard stream through
// Redis leases. SIGTERM to one: it drains and exits 0, releasing its
// leases; the other takes its shards at once (far sooner than the session
// timeout) and nothing is lost. Duplicates are counted and reported.
func TestRunTwoWorkersHandover(t *testing.T) {
	e := harness.Kinesis(t)
	rds := harness.Redis(t)
	env := kinesisEnv(e)
	in := e.NewStream(t, 4)
	out := e.NewStream(t, 2)
	cfgPath := runConfig(t, e, rds.URL, harness.UniqueName(t), in, out, "")

	const perBatch = 20000
	lines := testLines(2*perBatch, 200)
	first, second := lines[:perBatch], lines[perBatch:]
	r := worker(t, env, nil, "produce", "--stream", in, "--input", writeLines(t, first), "--processor", "jsonlines", "--summary", "json")
	mustOK(t, r, "produce first batch")

	a := startWorker(t, nil, "run", "--config", cfgPath)
	notReady := a.health()
	waitFor(t, 30*time.Second, "worker A ready with 4 shards", func() bool {
		h := a.health()
		return h.status == 200 && h.Ready && len(heldShards(h)) == 4
	})
	if notReady.Ready && len(heldShards(notReady)) == 0 {
		t.Errorf("healthz said ready before any lease was held: %+v", notReady)
	}
	b := startWorker(t, nil, "run", "--config", cfgPath)
	waitFor(t, 30*time.Second, "the shards split 2/2 between A and B", func() bool {
		return len(heldShards(a.health())) == 2 && len(heldShards(b.health())) == 2
	})
	held := append(heldShards(a.health()), heldShards(b.health())...)
	slices.Sort(held)
	if len(slices.Compact(held)) != 4 {
		t.Fatalf("A and B hold %v, want 4 distinct shards", held)
	}

	// Write the second batch while A is stopped.
	produced := make(chan result, 1)
	go func() {
		produced <- worker(t, env, nil, "produce", "--stream", in, "--input", writeLines(t, second), "--processor", "jsonlines", "--summary", "json")
	}()
	code, took := a.stop(syscall.SIGTERM, 30*time.Second)
	if code != 0 {
		t.Fatalf("worker A exited %d after SIGTERM, want 0\n%s", code, a.log())
	}
	if !strings.Contains(a.log(), "stopped cleanly") {
		t.Errorf("worker A did not log a clean stop")
	}
	t.Logf("worker A drained and exited in %v", took)
	takeover := waitFor(t, 15*time.Second, "worker B to hold all 4 shards", func() bool {
		return len(heldShards(b.health())) == 4
	})
	t.Logf("worker B held all 4 shards %v after A exited (session timeout 20s)", takeover)
	if takeover > 5*time.Second {
		t.Errorf("takeover took %v: the released leases were not taken at once", takeover)
	}
	mustOK(t, <-produced, "produce second batch")

	// Wait until B has copied everything, then read the output stream.
	// Caught up: every shard's last read was at the tip, nothing waits in
	// the output producer, and the count stood still between two scrapes.
	last := -1.0
	waitFor(t, 120*time.Second, "B to catch up", func() bool {
		fams := b.scrape()
		queued, _ := metricValue(fams, "shardwork_producer_queue_depth", map[string]string{"pipeline": "copy"})
		n, _ := metricValue(fams, "shardwork_consumer_records_total", map[string]string{"pipeline": "copy"})
		lag, _ := metricValue(fams, "shardwork_consumer_lag_ms", map[string]string{"pipeline": "copy"})
		f := fams["shardwork_consumer_lag_ms"]
		done := f != nil && len(f.Metric) == 4 && lag == 0 && queued == 0 && n > 0 && n == last
		last = n
		return done
	})
	r = worker(t, env, nil, "consume", "--stream", out, "--processor", "jsonlines", "--idle-exit", "5s",
		"--sleep-when-caught-up", "100ms", "--shard-fetch-rate", "5")
	mustOK(t, r, "consume output stream")
	got := multiset(outLines(r.stdout))
	want := multiset(lines)
	missing, dups := 0, 0
	for l := range want {
		if got[l] == 0 {
			missing++
		}
	}
	for l, n := range got {
		if want[l] == 0 {
			t.Fatalf("output holds a line that was never produced: %.100s", l)
		}
		dups += n - 1
	}
	t.Logf("handover: %d lines produced, %d distinct delivered, %d duplicates (at-least-once redelivery)", len(lines), len(got), dups)
	if missing > 0 {
		t.Fatalf("%d lines lost in the handover: %s", missing, diffMultisets(want, got))
	}
	if maps.Equal(got, want) && dups != 0 {
		t.Fatal("impossible: equal multisets with duplicates")
	}

	// B's metrics parse and tell the same story.
	fams := b.scrape()
	for _, name := range []string{"shardwork_consumer_records_total", "shardwork_consumer_bytes_total",
		"shardwork_consumer_get_records_calls_total", "shardwork_producer_records_total", "shardwork_leases_held",
		"shardwork_lease_events_total", "shardwork_consumer_lag_ms", "shardwork_consumer_record_age_ms", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if v, _ := metricValue(fams, "shardwork_leases_held", map[string]string{"pipeline": "copy"}); v != 4 {
		t.Errorf("shardwork_leases_held = %v, want 4", v)
	}
	if v, _ := metricValue(fams, "shardwork_lease_events_total", map[string]string{"pipeline": "copy", "event": "acquired"}); v < 4 {
		t.Errorf("acquired lease events = %v, want ≥ 4", v)
	}
	if f := fams["shardwork_consumer_lag_ms"]; f == nil || len(f.Metric) != 4 {
		t.Errorf("shardwork_consumer_lag_ms: want one series per shard, got %v", f)
	} else if v, _ := metricValue(fams, "shardwork_consumer_lag_ms", nil); v != 0 {
		t.Errorf("caught up, yet shardwork_consumer_lag_ms sums to %v", v)
	}
	if v, _ := metricValue(fams, "shardwork_producer_failures_total", nil); v != 0 {
		t.Errorf("producer failures = %v", v)
	}

	code, took = b.stop(syscall.SIGINT, 30*time.Second)
	if code != 0 {
		t.Fatalf("worker B exited %d after SIGINT\n%s", code, b.log())
	}
	t.Logf("worker B drained and exited in %v", took)
	// Both released their leases: a third worker takes all four at once.
	c := startWorker(t, nil, "run", "--config", cfgPath)
	waitFor(t, 10*time.Second, "a new worker to take the released leases", func() bool {
		return len(heldShards(c.health())) == 4
	})
	if code, _ := c.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("worker C exited %d", code)
	}
	_ = strconv.Itoa
}

// TestHealthzFlipsToReady runs two workers on a one-shard stream: the one
// without a lease reports 503 until the other stops and hands it over.
func TestHealthzFlipsToReady(t *testing.T) {
	e := harness.Kinesis(t)
	rds := harness.Redis(t)
	in, out := e.NewStream(t, 1), e.NewStream(t, 1)
	cfgPath := runConfig(t, e, rds.URL, harness.UniqueName(t), in, out, "")
	a := startWorker(t, nil, "run", "--config", cfgPath)
	waitFor(t, 30*time.Second, "worker A ready", func() bool { return a.health().status == 200 })
	b := startWorker(t, nil, "run", "--config", cfgPath)
	// B announces itself but must not take A's only shard: sample it over
	// a few of its lease rounds (heartbeat_frequency 300ms).
	waitFor(t, 10*time.Second, "worker B to answer /healthz", func() bool { return b.health().status != 0 })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range 10 {
		<-tick.C
		h := b.health()
		if h.status != 503 || h.Ready || len(heldShards(h)) != 0 || h.Kinesis != "ok" {
			t.Fatalf("worker B without a lease: %+v, want 503, not ready, Kinesis ok", h)
		}
		if len(heldShards(a.health())) != 1 {
			t.Fatalf("worker A lost its shard while B waited")
		}
	}
	if code, _ := a.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("worker A exit %d", code)
	}
	took := waitFor(t, 10*time.Second, "worker B to become ready", func() bool {
		h := b.health()
		return h.status == 200 && h.Ready && len(heldShards(h)) == 1
	})
	t.Logf("worker B ready %v after A stopped", took)
	if code, _ := b.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("worker B exit %d", code)
	}
}

// TestRunHandlerPipeline runs the enrich handler plugin in `worker run`
// and checks the plugin and handler figures on /metrics.
func TestRunHandlerPipeline(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	e := harness.Kinesis(t)
	rds := harness.Redis(t)
	env := kinesisEnv(e)
	in, out := e.NewStream(t, 2), e.NewStream(t, 1)
	cfgPath := runConfig(t, e, rds.URL, harness.UniqueName(t), in, out, fmt.Sprintf(`    handler: %s
    handler_config:
      route_field: ""
      add: {stage: test}
`, enrich))
	w := startWorker(t, nil, "run", "--config", cfgPath, "--plugin-cache-dir", t.TempDir())
	var input strings.Builder
	for i := range 100 {
		typ := "event"
		if i%10 == 0 {
			typ = "heartbeat"
		}
		fmt.Fprintf(&input, "{\"i\":%d,\"type\":%q}\n", i, typ)
	}
	mustOK(t, worker(t, env, []byte(input.String()), "produce", "--stream", in, "--processor", "jsonlines"), "produce")
	waitFor(t, 60*time.Second, "100 handled records", func() bool {
		v, _ := metricValue(w.scrape(), "shardwork_handler_results_total", map[string]string{"pipeline": "copy"})
		return v >= 100
	})
	fams := w.scrape()
	ok, _ := metricValue(fams, "shardwork_handler_results_total", map[string]string{"pipeline": "copy", "status": "ok"})
	skip, _ := metricValue(fams, "shardwork_handler_results_total", map[string]string{"pipeline": "copy", "status": "skip"})
	calls, found := metricValue(fams, "shardwork_plugin_call_seconds", map[string]string{"pipeline": "copy"})
	if ok != 90 || skip != 10 || !found || calls < 1 {
		t.Fatalf("handler results ok %v skip %v (want 90, 10), plugin calls %v", ok, skip, calls)
	}
	r := worker(t, env, nil, "consume", "--stream", out, "--processor", "jsonlines", "--max-records", "90", "--idle-exit", "20s")
	mustOK(t, r, "consume output")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 90 || !strings.Contains(lines[0], `"stage":"test"`) || strings.Contains(r.stdout, "heartbeat") {
		t.Fatalf("output: %d lines, first %q", len(lines), lines[0])
	}
	if code, _ := w.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestRunTranscodes runs pipelines whose streams are not JSON: a handler
// plugin reads msgpack records as JSON and its output is written as
// msgpack; a copy without handler re-encodes msgpack as JSON lines.
func TestRunTranscodes(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	in, viaHandler, copied := e.NewStream(t, 1), e.NewStream(t, 1), e.NewStream(t, 1)
	lines := testLines(500, 80)
	mustOK(t, worker(t, env, nil, "produce", "--stream", in, "--input", writeLines(t, lines), "--processor", "msgpack"), "produce")
	cfg := writeFile(t, "w.yaml", fmt.Sprintf(`endpoint: %s
listen: 127.0.0.1:0
sleep_when_caught_up: 100ms
processor: msgpack
pipelines:
  - name: enrich
    stream: %s
    handler: %s
    handler_config: {route_field: "", skip_field: "", add: {seen: true}}
    output_stream: %s
  - name: copy
    stream: %s
    output_stream: %s
    output_processor: jsonlines
`, e.Endpoint, in, enrich, viaHandler, in, copied))
	w := startWorker(t, nil, "run", "--config", cfg)
	waitFor(t, 60*time.Second, "both pipelines to finish the stream", func() bool {
		fams := w.scrape()
		a, _ := metricValue(fams, "shardwork_producer_records_total", map[string]string{"pipeline": "enrich"})
		b, _ := metricValue(fams, "shardwork_producer_records_total", map[string]string{"pipeline": "copy"})
		return a == 500 && b == 500
	})
	if code, _ := w.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	r := worker(t, env, nil, "consume", "--stream", copied, "--processor", "jsonlines", "--max-records", "500", "--idle-exit", "10s")
	mustOK(t, r, "consume the copy")
	if got := outLines(r.stdout); !maps.Equal(multiset(got), multiset(lines)) {
		t.Fatalf("msgpack → jsonlines copy: %s", diffMultisets(multiset(lines), multiset(got)))
	}
	r = worker(t, env, nil, "consume", "--stream", viaHandler, "--processor", "msgpack", "--max-records", "500", "--idle-exit", "10s")
	mustOK(t, r, "consume the handler's output")
	got := outLines(r.stdout)
	if len(got) != 500 {
		t.Fatalf("handler output: %d records, want 500", len(got))
	}
	for _, l := range got {
		if !strings.Contains(l, `"seen":true`) || !strings.Contains(l, `"_shard":"shardId-`) {
			t.Fatalf("handler output record not enriched: %s", l)
		}
	}
}
