package worker_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardwork/shardwork/tests/harness"
)

// testLines makes n distinct compact JSON lines with sorted keys (the form
// a JSON decoder re-encodes them to), of about size bytes each.
func testLines(n, size int) []string {
	lines := make([]string, n)
	for i := range lines {
		l := fmt.Sprintf(`{"i":%d,"key":"k-%d","pad":"`, i, i%97)
		pad := max(size-len(l)-2, 0)
		lines[i] = l + strings.Repeat(string(rune('a'+i%26)), pad) + `"}`
	}
	return lines
}

func writeLines(t testing.TB, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// outLines splits a command's output into lines (none for empty output).
func outLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// multiset counts each line.
func multiset(lines []string) map[string]int {
	m := make(map[string]int, len(lines))
	for _, l := range lines {
		m[l]++
	}
	return m
}

// diffMultisets describes how got differs from want.
func diffMultisets(want, got map[string]int) string {
	var missing, extra []string
	for l, n := range want {
		if got[l] < n {
			missing = append(missing, fmt.Sprintf("%dx %.80s", n-got[l], l))
		}
	}
	for l, n := range got {
		if want[l] < n {
			extra = append(extra, fmt.Sprintf("%dx %.80s", n-want[l], l))
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("%d lines missing (first %q), %d extra (first %q)",
		len(missing), missing[:min(3, len(missing))], len(extra), extra[:min(3, len(extra))])
}

type summary struct {
	Lines          int64 `json:"lines"`
	Records        int64 `json:"records"`
	Delivered      int64 `json:"delivered"`
	KinesisRecords int64 `json:"kinesis_records"`
	Bytes          int64 `json:"bytes"`
	Failed         int64 `json:"failed"`
	Rejected       int64 `json:"rejected"`
}

func parseSummary(t testing.TB, out string) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(lastLine(out)), &s); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	return s
}

// TestProduceConsumeRoundTrip puts a 100,000-line file through produce and
// reads it back with consume --max-records 100000: the same lines come
// back, as a multiset, for each processor.
func TestProduceConsumeRoundTrip(t *testing.T) {
	const n = 100000
	lines := testLines(n, 120)
	input := writeLines(t, lines)
	want := multiset(lines)
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	procs := []string{"jsonlines", "msgpack", "kpl-json"}
	if p := wasmSerializerPlugin(t); p != "" {
		procs = append(procs, "wasm:"+p)
	}
	for _, proc := range procs {
		t.Run(strings.ReplaceAll(filepath.Base(proc), ".", "_"), func(t *testing.T) {
			stream := e.NewStream(t, 2)
			r := worker(t, env, nil, "produce", "--stream", stream, "--input", input, "--processor", proc,
				"--summary", "json", "--partition-key-field", "key")
			mustOK(t, r, "produce")
			s := parseSummary(t, r.stdout)
			if s.Records != n || s.Delivered != n || s.Failed != 0 || s.Rejected != 0 || s.KinesisRecords == 0 || s.Bytes == 0 {
				t.Fatalf("produce summary %+v, want %d records delivered", s, n)
			}
			t.Logf("%s: %d records in %d Kinesis records, %d bytes", proc, s.Records, s.KinesisRecords, s.Bytes)

			args := []string{"consume", "--stream", stream, "--processor", proc,
				"--max-records", strconv.Itoa(n), "--idle-exit", "60s", "--sleep-when-caught-up", "200ms"}
			if strings.HasPrefix(proc, "wasm:") {
				// A Go guest decodes ~10x slower than native code: smaller
				// reads keep each plugin call well inside its deadline on a
				// busy machine.
				args = append(args, "--record-limit", "20", "--plugin-call-timeout", "60s")
			}
			r = worker(t, env, nil, args...)
			mustOK(t, r, "consume")
			got := outLines(r.stdout)
			if len(got) != n {
				t.Errorf("consume printed %d lines, want %d", len(got), n)
			}
			if gm := multiset(got); !maps.Equal(gm, want) {
				t.Fatalf("consumed lines differ: %s", diffMultisets(want, gm))
			}
		})
	}
}

// TestProduceStringAndMeta checks raw text lines, --meta output and the
// partition key taken from a field.
func TestProduceStringAndMeta(t *testing.T) {
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	stream := e.NewStream(t, 1)
	text := "plain text line\n  leading spaces kept\n{\"not\":\"parsed\"}\n"
	r := worker(t, env, []byte(text), "produce", "--stream", stream, "--processor", "string", "--summary", "json")
	mustOK(t, r, "produce string")
	if s := parseSummary(t, r.stdout); s.Delivered != 3 {
		t.Fatalf("summary %+v", s)
	}
	r = worker(t, env, nil, "consume", "--stream", stream, "--processor", "string", "--max-records", "3", "--meta")
	mustOK(t, r, "consume --meta")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m struct {
			ShardID        string  `json:"shard_id"`
			SequenceNumber string  `json:"sequence_number"`
			PartitionKey   string  `json:"partition_key"`
			ArrivalTime    *string `json:"arrival_time"`
			Data           string  `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("meta line %q: %v", l, err)
		}
		if m.ShardID == "" || m.SequenceNumber == "" || m.PartitionKey == "" || m.ArrivalTime == nil {
			t.Fatalf("meta line lacks metadata: %s", l)
		}
		got = append(got, m.Data)
	}
	want := []string{"plain text line", "  leading spaces kept", "{\"not\":\"parsed\"}"}
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
}

// TestProduceRejectsAndFails checks that lines that cannot be put are
// listed and make the exit status non-zero, while the others are delivered.
func TestProduceRejectsAndFails(t *testing.T) {
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	stream := e.NewStream(t, 1)
	input := "{\"ok\":1}\nnot json\n{\"ok\":2}\n"
	r := worker(t, env, []byte(input), "produce", "--stream", stream, "--processor", "json", "--summary", "json")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "rejected: line 2: not valid JSON") {
		t.Fatalf("stderr does not list the rejected line:\n%s", r.stderr)
	}
	if s := parseSummary(t, r.stdout); s.Delivered != 2 || s.Rejected != 1 {
		t.Fatalf("summary %+v", s)
	}

	// A stream that does not exist: a clear error, exit 1.
	r = worker(t, env, []byte("{}\n"), "produce", "--stream", "no-such-stream-"+harness.UniqueName(t))
	if r.code != 1 || !strings.Contains(r.stderr, "not found (use --create-stream") {
		t.Fatalf("missing stream: exit %d, stderr %q", r.code, r.stderr)
	}
	missing := "no-such-stream-" + harness.UniqueName(t)
	r = worker(t, env, nil, "consume", "--stream", missing)
	if r.code != 1 || lastLine(r.stderr) != "worker: stream "+missing+" not found" {
		t.Fatalf("consume of a missing stream: exit %d, stderr %q", r.code, r.stderr)
	}
	r = worker(t, env, nil, "consume", "--stream", stream, "--output-stream", missing)
	if r.code != 1 || lastLine(r.stderr) != "worker: output stream "+missing+" not found" {
		t.Fatalf("consume into a missing stream: exit %d, stderr %q", r.code, r.stderr)
	}
	// --create-stream makes it.
	name := harness.UniqueName(t)
	r = worker(t, env, []byte("{\"a\":1}\n"), "produce", "--stream", name, "--create-stream", "--shards", "2", "--summary", "json")
	mustOK(t, r, "produce --create-stream")
	r = worker(t, env, nil, "stream", "describe", name)
	mustOK(t, r, "describe created stream")
	if !strings.Contains(r.stdout, `"open_shards": 2`) {
		t.Fatalf("created stream: %s", r.stdout)
	}
	worker(t, env, nil, "stream", "delete", name)
}

// TestConsumeAtTimestampAndProgress reads from a timestamp between two
// batches and checks produce's progress line when forced on.
func TestConsumeAtTimestampAndProgress(t *testing.T) {
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	stream := e.NewStream(t, 2)
	mustOK(t, worker(t, env, []byte("\"before-1\"\n\"before-2\"\n"), "produce", "--stream", stream), "produce first batch")
	mid := time.Now().UTC().Format(time.RFC3339Nano)
	lines := testLines(3000, 100)
	r := worker(t, env, nil, "produce", "--stream", stream, "--input", writeLines(t, lines), "--processor", "json",
		"--progress", "always")
	mustOK(t, r, "produce second batch")
	if !strings.Contains(r.stderr, "\r\x1b[K") || !regexp.MustCompile(`records 3000, delivered 3000, [0-9.]+ [kM]B, \d+ records/s, throttled 0, retried 0, 100%\n`).MatchString(r.stderr) {
		t.Errorf("no final progress line on stderr:\n%q", lastLine(r.stderr))
	}
	if !strings.HasPrefix(r.stdout, "records 3000 (delivered 3000) in 3000 Kinesis records") {
		t.Errorf("text summary %q", r.stdout)
	}
	r = worker(t, env, nil, "consume", "--stream", stream, "--at-timestamp", mid, "--max-records", "3000", "--idle-exit", "20s")
	mustOK(t, r, "consume --at-timestamp")
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !maps.Equal(multiset(got), multiset(lines)) {
		t.Fatalf("from %s: %s", mid, diffMultisets(multiset(lines), multiset(got)))
	}
}

// TestConsumeResumesFromRedisCheckpoint reads a stream in three runs of
// --max-records under one app name with Redis checkpoints, the middle one
// through a handler plugin: together they give every record once, in order.
func TestConsumeResumesFromRedisCheckpoint(t *testing.T) {
	e := harness.Kinesis(t)
	rds := harness.Redis(t)
	env := append(kinesisEnv(e), "REDIS_URL="+rds.URL)
	stream := e.NewStream(t, 1)
	lines := testLines(300, 60)
	mustOK(t, worker(t, env, nil, "produce", "--stream", stream, "--input", writeLines(t, lines), "--processor", "jsonlines"), "produce")
	app := harness.UniqueName(t)
	enrich := examplePlugin(t, "enrich")
	var got []string
	for i, n := range []string{"100", "150", "50"} {
		args := []string{"consume", "--stream", stream, "--processor", "jsonlines", "--checkpointer", "redis",
			"--app", app, "--max-records", n, "--idle-exit", "20s"}
		if i == 1 {
			// The middle run goes through a handler plugin that emits every
			// record (with fields added): the records past the limit in its
			// last batch must stay unfinished.
			args = append(args, "--handler", enrich, "--handler-config", `{"route_field":"","skip_field":""}`, "--max-batch-size", "64")
		}
		r := worker(t, env, nil, args...)
		mustOK(t, r, "consume run "+strconv.Itoa(i))
		out := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if strconv.Itoa(len(out)) != n {
			t.Fatalf("run %d printed %d records, want %s", i, len(out), n)
		}
		if i == 1 {
			for j, l := range out {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil || m["_shard"] == nil {
					t.Fatalf("handler output %q: %v", l, err)
				}
				delete(m, "_shard")
				delete(m, "_sequence")
				delete(m, "_subsequence")
				delete(m, "_partition_key")
				delete(m, "_arrival")
				b, _ := json.Marshal(m)
				out[j] = string(b)
			}
		}
		got = append(got, out...)
	}
	if !slices.Equal(got, lines) {
		t.Fatalf("three runs gave %d records; not the stream in order once: %s", len(got), diffMultisets(multiset(lines), multiset(got)))
	}
	// A fourth run finds nothing left and stops when idle.
	r := worker(t, env, nil, "consume", "--stream", stream, "--processor", "jsonlines", "--checkpointer", "redis",
		"--app", app, "--idle-exit", "1s")
	mustOK(t, r, "consume after the end")
	if r.stdout != "" {
		t.Fatalf("fourth run printed %q", r.stdout)
	}
}

// TestConsumeSIGTERM stops a long-running consume with SIGTERM: it exits 0
// after a final checkpoint, and the next run under the same app resumes
// after the last printed record.
func TestConsumeSIGTERM(t *testing.T) {
	e := harness.Kinesis(t)
	rds := harness.Redis(t)
	env := append(kinesisEnv(e), "REDIS_URL="+rds.URL)
	stream := e.NewStream(t, 1)
	lines := testLines(50, 40)
	mustOK(t, worker(t, env, nil, "produce", "--stream", stream, "--input", writeLines(t, lines), "--processor", "jsonlines"), "produce")
	app := harness.UniqueName(t)
	cmd := exec.Command(workerBin, "consume", "--stream", stream, "--processor", "jsonlines", "--checkpointer", "redis", "--app", app)
	cmd.Env = append(baseEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var got []string
	for len(got) < len(lines) && sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !slices.Equal(got, lines) {
		t.Fatalf("printed %d records before SIGTERM, want the %d produced", len(got), len(lines))
	}
	more := testLines(60, 40)[50:]
	mustOK(t, worker(t, env, []byte(strings.Join(more, "\n")+"\n"), "produce", "--stream", stream, "--processor", "jsonlines"), "produce more")
	r := worker(t, env, nil, "consume", "--stream", stream, "--processor", "jsonlines", "--checkpointer", "redis",
		"--app", app, "--idle-exit", "2s")
	mustOK(t, r, "consume again")
	if next := strings.Split(strings.TrimSpace(r.stdout), "\n"); !slices.Equal(next, more) {
		t.Fatalf("resumed with %d records (%.60q...), want the 10 new ones", len(next), next)
	}
}
