package worker_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeFile writes content to name in a temp dir and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadConfig checks that each invalid invocation exits 2 with a single
// line naming the bad key and value, and no stack trace.
func TestBadConfig(t *testing.T) {
	badYAML := writeFile(t, "bad.yaml", "log_level: loud\n")
	unknownKey := writeFile(t, "unknown.yaml", "stream: s\nshardz: 4\n")
	notYAML := writeFile(t, "broken.yaml", "stream: [unclosed\n")
	badPipeline := writeFile(t, "pipe.yaml", "pipelines:\n  - name: a\n    stream: s\n    procesor: json\n")
	notWasm := writeFile(t, "not.wasm", "this is not a wasm module")
	cases := []struct {
		name string
		env  []string
		args []string
		want string // regexp the one-line message must match
	}{
		{"no command", nil, nil, `no command given`},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"stream", "describe", "--nope", "s"}, `flag provided but not defined: -nope`},
		{"bad int flag", nil, []string{"stream", "create", "--shards", "four", "s"}, `shards = "four" \(from flag --shards\): not an integer`},
		{"zero shards", nil, []string{"stream", "create", "--shards", "0", "s"}, `shards = "0" \(from flag --shards\): must be at least 1`},
		{"bad env level", []string{"SHARDWORK_LOG_LEVEL=loud"}, []string{"stream", "describe", "s"}, `log_level = "loud" \(from env SHARDWORK_LOG_LEVEL\): must be one of debug, info, warn, error`},
		{"bad yaml level", nil, []string{"stream", "describe", "--config", badYAML, "s"}, `log_level = "loud" \(from config file .*bad.yaml key log_level\)`},
		{"unknown yaml key", nil, []string{"stream", "describe", "--config", unknownKey}, `unknown.yaml line 2: unknown key "shardz"`},
		{"broken yaml", nil, []string{"stream", "describe", "--config", notYAML, "s"}, `broken.yaml: .*line`},
		{"missing config file", nil, []string{"stream", "describe", "--config", "/nonexistent/w.yaml", "s"}, `config "/nonexistent/w.yaml" \(from flag --config\): file not found`},
		{"unknown pipeline key", nil, []string{"run", "--config", badPipeline}, `pipe.yaml line 4: pipelines\[0\]: unknown key "procesor"`},
		{"bad duration", nil, []string{"consume", "--stream", "s", "--idle-exit", "soon"}, `idle_exit = "soon" \(from flag --idle-exit\): not a duration`},
		{"bad iterator", nil, []string{"consume", "--stream", "s", "--iterator-type", "OLDEST"}, `iterator_type = "OLDEST" \(from flag --iterator-type\): must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP`},
		{"bad timestamp", nil, []string{"consume", "--stream", "s", "--at-timestamp", "yesterday"}, `at_timestamp = "yesterday" \(from flag --at-timestamp\): not a time`},
		{"unknown processor", nil, []string{"decode", "--processor", "protobuf"}, `processor = "protobuf" \(from flag --processor\): unknown processor`},
		{"unknown processor env", []string{"SHARDWORK_PROCESSOR=xml"}, []string{"produce", "--stream", "s"}, `processor = "xml" \(from env SHARDWORK_PROCESSOR\): unknown processor`},
		{"missing plugin", nil, []string{"decode", "--processor", "wasm:/nonexistent/p.wasm"}, `processor = "wasm:/nonexistent/p.wasm" \(from flag --processor\): plugin file not found: /nonexistent/p.wasm`},
		{"missing handler", nil, []string{"consume", "--stream", "s", "--handler", "/nonexistent/h.wasm"}, `handler = "/nonexistent/h.wasm" \(from flag --handler\): plugin file not found`},
		{"plugin check of a missing file", nil, []string{"plugin", "check", "/nonexistent/p.wasm"}, `plugin file not found: /nonexistent/p.wasm`},
		{"plugin not wasm", nil, []string{"plugin", "check", notWasm}, `not\.wasm`},
		{"bad checkpointer", nil, []string{"consume", "--stream", "s", "--checkpointer", "dynamo"}, `checkpointer = "dynamo" \(from flag --checkpointer\): want memory, redis or a redis:// URL`},
		{"unreachable redis", nil, []string{"consume", "--stream", "s", "--checkpointer", "redis://127.0.0.1:1/0"}, `redis at 127.0.0.1:1 .*unreachable`},
		{"no stream", nil, []string{"produce"}, `no stream given`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := worker(t, tc.env, []byte{}, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", r.code, r.stderr)
			}
			msg := lastLine(r.stderr)
			if !strings.HasPrefix(msg, "worker: ") {
				t.Errorf("last stderr line %q does not start with \"worker: \"", msg)
			}
			if !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Errorf("message %q does not match %q", msg, tc.want)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", r.stderr)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestVersion(t *testing.T) {
	r := worker(t, nil, nil, "version")
	mustOK(t, r, "version")
	if !regexp.MustCompile(`^worker \S+.* go1\.\d+`).MatchString(r.stdout) {
		t.Fatalf("version output %q", r.stdout)
	}
}

func TestHelp(t *testing.T) {
	r := worker(t, nil, nil, "produce", "-h")
	if r.code != 0 {
		t.Fatalf("produce -h: exit %d: %s", r.code, r.stderr)
	}
	for _, flag := range []string{"-stream", "-processor", "-partition-key-field", "-create-stream", "SHARDWORK_STREAM"} {
		if !strings.Contains(r.stderr, flag) {
			t.Errorf("produce -h does not mention %s:\n%s", flag, r.stderr)
		}
	}
}
