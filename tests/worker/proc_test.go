package worker_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// running is a `worker run` process: its JSON log lines are collected and
// its HTTP address is read from the "listening" line.
type running struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string

	mu      sync.Mutex
	logs    []map[string]any
	raw     []string
	exited  chan struct{}
	exitErr error
	started time.Time
}

// startWorker starts `worker args...` and waits until it listens.
func startWorker(t testing.TB, env []string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(workerBin, args...)
	cmd.Env = append(baseEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	r := &running{t: t, cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			r.mu.Lock()
			r.raw = append(r.raw, line)
			if m != nil {
				r.logs = append(r.logs, m)
				if m["msg"] == "listening" {
					select {
					case listening <- fmt.Sprint(m["addr"]):
					default:
					}
				}
			}
			r.mu.Unlock()
		}
		r.exitErr = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("worker %q log:\n%s", args, r.log())
		}
	})
	select {
	case r.addr = <-listening:
	case <-r.exited:
		t.Fatalf("worker exited before listening: %v\n%s", r.exitErr, r.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("worker did not listen within 60s\n%s", r.log())
	}
	return r
}

func (r *running) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.raw, "\n")
}

// signal sends sig and waits for the exit status.
func (r *running) stop(sig syscall.Signal, within time.Duration) (int, time.Duration) {
	r.t.Helper()
	start := time.Now()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(within):
		r.t.Fatalf("worker did not exit within %v of %v\n%s", within, sig, r.log())
	}
	return r.cmd.ProcessState.ExitCode(), time.Since(start)
}

type healthz struct {
	Ready     bool                `json:"ready"`
	Kinesis   string              `json:"kinesis"`
	Pipelines map[string][]string `json:"pipelines"`
	status    int
}

func (r *running) health() healthz {
	r.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/healthz")
	if err != nil {
		return healthz{Kinesis: err.Error()}
	}
	defer resp.Body.Close()
	var h healthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		r.t.Fatalf("/healthz body: %v", err)
	}
	h.status = resp.StatusCode
	return h
}

// waitFor polls cond every 50 ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
	return time.Since(start)
}

// scrape reads /metrics with the Prometheus text parser.
func (r *running) scrape() map[string]*dto.MetricFamily {
	r.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		r.t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		r.t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		r.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metricValue sums a family's samples whose labels include want.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}
