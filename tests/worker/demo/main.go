// Command demo shows the worker binary end to end, as a user would run it:
// it builds `worker` and the example plugins, starts a local Kinesis
// (kinesalite) and uses Redis when one answers (memory checkpoints
// otherwise), produces a sample event stream through the msgpack
// WebAssembly serializer/aggregator, runs a `worker run` pipeline with the
// enrich handler plugin into an alerts stream, reads the alerts back, prints
// what went through and cleans up. It exits non-zero when a record is
// missing.
//
//	go run ./tests/worker/demo
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardwork/shardwork/tests/harness"
)

const events = 5000

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	root, dir, bin string
	env            []string
}

// worker runs the binary and returns its stdout.
func (d *demo) worker(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = d.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("worker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (d *demo) build(ctx context.Context, out, pkg string, wasm bool) error {
	args := []string{"build", "-o", out}
	if wasm {
		args = []string{"build", "-buildmode=c-shared", "-o", out}
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = d.root
	cmd.Env = os.Environ()
	if wasm {
		cmd.Env = append(cmd.Env, "GOOS=wasip1", "GOARCH=wasm")
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, msg)
	}
	return nil
}

func run(ctx context.Context) error {
	start := time.Now()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "shardwork-worker-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{root: root, dir: dir, bin: filepath.Join(dir, "worker")}

	fmt.Println("building worker and the example plugins (msgpack, enrich)…")
	msgpack, enrich := filepath.Join(dir, "msgpack.wasm"), filepath.Join(dir, "enrich.wasm")
	for _, b := range []struct {
		out, pkg string
		wasm     bool
	}{{d.bin, "./cmd/worker", false}, {msgpack, "./plugins/examples/msgpack", true}, {enrich, "./plugins/examples/enrich", true}} {
		if err := d.build(ctx, b.out, b.pkg, b.wasm); err != nil {
			return err
		}
	}

	fmt.Println("starting kinesalite (local Kinesis)…")
	kin, err := harness.StartKinesalite(ctx)
	if err != nil {
		return err
	}
	defer kin.Stop()
	d.env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_KINESIS="+kin.Endpoint, "SHARDWORK_PLUGIN_CACHE_DIR="+filepath.Join(dir, "cache"))
	checkpointer := "memory"
	if r, err := harness.FindOrStartRedis(ctx); err == nil {
		defer r.Stop()
		checkpointer = r.URL
		fmt.Println("leases and checkpoints in Redis at", r.Addr)
	} else {
		fmt.Println("no Redis (", err, "): memory checkpoints")
	}

	if _, err := d.worker(ctx, nil, "plugin", "compile", msgpack, enrich); err != nil {
		return err
	}
	for _, s := range []struct {
		name, shards string
	}{{"app-events", "2"}, {"alerts", "1"}} {
		if _, err := d.worker(ctx, nil, "stream", "create", s.name, "--shards", s.shards); err != nil {
			return err
		}
	}

	// Application events: every 10th a heartbeat (skipped by the
	// handler), every 4th a warning or an error (routed to alerts).
	var in bytes.Buffer
	wantAlerts := 0
	for i := range events {
		typ, level := "event", "info"
		switch {
		case i%10 == 0:
			typ = "heartbeat"
		case i%8 == 1:
			level = "error"
			wantAlerts++
		case i%8 == 5:
			level = "warn"
			wantAlerts++
		}
		fmt.Fprintf(&in, "{\"id\":%d,\"type\":%q,\"level\":%q,\"user\":\"u-%d\",\"msg\":\"something happened\"}\n", i, typ, level, i%37)
	}
	t0 := time.Now()
	out, err := d.worker(ctx, in.Bytes(), "produce", "--stream", "app-events", "--processor", "wasm:"+msgpack,
		"--partition-key-field", "user", "--summary", "json")
	if err != nil {
		return err
	}
	var sum struct {
		Delivered      int64 `json:"delivered"`
		KinesisRecords int64 `json:"kinesis_records"`
		Bytes          int64 `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		return fmt.Errorf("produce summary %q: %w", out, err)
	}
	fmt.Printf("produced %d events through the msgpack plugin into %d Kinesis records (%d bytes) in %v\n",
		sum.Delivered, sum.KinesisRecords, sum.Bytes, time.Since(t0).Round(time.Millisecond))

	// A fresh app name: checkpoints of an earlier run (in a shared Redis)
	// name sequence numbers of another kinesalite.
	app := fmt.Sprintf("worker-demo-%d", time.Now().UnixNano())
	cfg := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
checkpointer: %s
heartbeat_frequency: 1s
sleep_when_caught_up: 200ms
pipelines:
  - name: alerts
    app: %s
    stream: app-events
    processor: wasm:%s
    handler: %s
    handler_config:
      skip_field: type
      skip_values: [heartbeat]
      route_field: level
      route_values: [error, warn]
      add: {source: demo}
    output_stream: alerts
    output_processor: jsonlines
`, checkpointer, app, msgpack, enrich)), 0o644); err != nil {
		return err
	}
	t0 = time.Now()
	w := exec.CommandContext(ctx, d.bin, "run", "--config", cfg)
	w.Env = d.env
	stderr, err := w.StderrPipe()
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Process.Kill()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
				addr <- fmt.Sprint(m["addr"])
			}
		}
	}()
	var metrics string
	select {
	case metrics = <-addr:
	case <-time.After(time.Minute):
		return errors.New("worker run did not start listening")
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Printf("worker run: pipeline app-events → msgpack plugin → enrich plugin → alerts (metrics on http://%s/metrics)\n", metrics)
	var ok, skip, calls float64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for ok+skip < events {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("the worker handled %v of %d events in 2 minutes", ok+skip, events)
		case <-tick.C:
		}
		ok, skip, calls = scrape(metrics)
	}
	fmt.Printf("handled %v events (%v kept, %v heartbeats skipped) in %v, %v plugin calls\n",
		ok+skip, ok, skip, time.Since(t0).Round(time.Millisecond), calls)
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := w.Wait(); err != nil {
		return fmt.Errorf("worker run after SIGTERM: %w", err)
	}
	fmt.Println("worker run stopped on SIGTERM: drained, checkpointed, leases released, exit 0")

	out, err = d.worker(ctx, nil, "consume", "--stream", "alerts", "--processor", "jsonlines", "--idle-exit", "3s")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fmt.Printf("alerts stream: %d records (want %d); the first:\n  %s\n", len(lines), wantAlerts, lines[0])
	if len(lines) < wantAlerts {
		return fmt.Errorf("%d alerts missing", wantAlerts-len(lines))
	}
	fmt.Printf("done in %v; cleaning up\n", time.Since(start).Round(time.Second))
	return nil
}

// scrape reads the handler results and plugin calls from /metrics.
func scrape(addr string) (ok, skip, calls float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, 0
	}
	if f := fams["shardwork_handler_results_total"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "status" && l.GetValue() == "ok" {
					ok += m.Counter.GetValue()
				}
				if l.GetName() == "status" && l.GetValue() == "skip" {
					skip += m.Counter.GetValue()
				}
			}
		}
	}
	if f := fams["shardwork_plugin_call_seconds"]; f != nil {
		for _, m := range f.Metric {
			calls += float64(m.Histogram.GetSampleCount())
		}
	}
	return ok, skip, calls
}
