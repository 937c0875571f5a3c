package worker_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/shardwork/shardwork/tests/harness"
)

var (
	pluginMu    sync.Mutex
	pluginBuilt = map[string]*pluginBuild{}
	pluginDir   string
)

type pluginBuild struct {
	once sync.Once
	path string
	err  error
}

// examplePlugin builds plugins/examples/<name> for GOOS=wasip1 once per
// test binary and returns the .wasm path.
func examplePlugin(t testing.TB, name string) string {
	t.Helper()
	pluginMu.Lock()
	b, ok := pluginBuilt[name]
	if !ok {
		b = &pluginBuild{}
		pluginBuilt[name] = b
	}
	if pluginDir == "" {
		pluginDir = filepath.Join(filepath.Dir(workerBin), "plugins")
	}
	pluginMu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(pluginDir, name+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./plugins/examples/"+name)
		cmd.Dir = repoFile(t, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = &buildError{name: name, msg: string(msg), err: err}
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatalf("build plugin %s: %v", name, b.err)
	}
	return b.path
}

type buildError struct {
	name, msg string
	err       error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.msg }

// wasmSerializerPlugin is the msgpack example: a serializer and aggregator
// plugin byte-compatible with the native msgpack processor.
func wasmSerializerPlugin(t testing.TB) string { return examplePlugin(t, "msgpack") }

// abiV2Module is a minimal WebAssembly module that imports the host module
// of ABI v2, as a plugin built for a newer ABI would.
func abiV2Module() []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	imp := append([]byte{1}, str("shardwork_v2")...)
	imp = append(imp, str("log")...)
	imp = append(imp, 0x00, 0x00) // func, type 0
	mod := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	mod = append(mod, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00) // type section: () -> ()
	mod = append(mod, 0x02, byte(len(imp)))
	return append(mod, imp...)
}

// TestBadPlugins checks each plugin problem gives exit 2 and a one-line
// message naming the setting, the file and the problem.
func TestBadPlugins(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	msgpack := examplePlugin(t, "msgpack")
	v2 := writeFile(t, "v2.wasm", string(abiV2Module()))
	garbage := writeFile(t, "garbage.wasm", "\x00asm\x01\x00\x00\x00\xff\xff")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"not wasm", []string{"plugin", "check", writeFile(t, "x.wasm", "hello")}, `x\.wasm.*not a WebAssembly module`},
		{"corrupt wasm", []string{"decode", "--processor", "wasm:" + garbage}, `processor = "wasm:.*garbage.wasm" \(from flag --processor\): not a WebAssembly module`},
		{"abi v2", []string{"plugin", "check", v2}, `plugin built for another ABI version: .*ABI v2`},
		{"abi v2 as processor", []string{"decode", "--processor", "wasm:" + v2}, `processor = .*: plugin built for another ABI version`},
		{"handler as processor", []string{"decode", "--processor", "wasm:" + enrich}, `processor = .*enrich.wasm" \(from flag --processor\): wrong plugin kind: plugin "enrich" is \[handler\], not a serializer or aggregator`},
		{"serializer as handler", []string{"consume", "--stream", "s", "--handler", msgpack}, `handler = ".*msgpack.wasm" \(from flag --handler\): wrong plugin kind`},
		{"check wrong kind", []string{"plugin", "check", "--kind", "handler", msgpack}, `wrong plugin kind`},
		{"bad plugin config", []string{"plugin", "check", "--plugin-config", `{"nope":1}`, enrich}, `plugin rejected its configuration: .*unknown field "nope"`},
		{"plugin config not JSON", []string{"plugin", "check", "--plugin-config", `{`, enrich}, `plugin_config = "\{" \(from flag --plugin-config\): not valid JSON`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := worker(t, nil, []byte{}, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", r.code, r.stderr)
			}
			msg := lastLine(r.stderr)
			if !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Errorf("message %q does not match %q", msg, tc.want)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", r.stderr)
			}
		})
	}
}

// TestPluginCommands checks plugin check, describe and compile on the
// example plugins.
func TestPluginCommands(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	msgpack := examplePlugin(t, "msgpack")
	r := worker(t, nil, nil, "plugin", "check", enrich, msgpack)
	mustOK(t, r, "plugin check")
	if !strings.Contains(r.stdout, "enrich 1.0.0, ABI 1, kinds [handler]") ||
		!strings.Contains(r.stdout, "msgpack 1.0.0, ABI 1, kinds [serializer aggregator]; serializer round trip, aggregator round trip") {
		t.Fatalf("plugin check output:\n%s", r.stdout)
	}
	r = worker(t, nil, nil, "plugin", "describe", enrich)
	mustOK(t, r, "plugin describe")
	var d struct {
		Name         string          `json:"name"`
		ABI          int             `json:"abi"`
		Kinds        []string        `json:"kinds"`
		ConfigSchema json.RawMessage `json:"config_schema"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Name != "enrich" || d.ABI != 1 || len(d.ConfigSchema) == 0 {
		t.Fatalf("describe: %v %+v\n%s", err, d, r.stdout)
	}
	cache := t.TempDir()
	r = worker(t, nil, nil, "plugin", "compile", "--plugin-cache-dir", cache, enrich)
	mustOK(t, r, "plugin compile")
	entries, _ := os.ReadDir(cache)
	if len(entries) == 0 {
		t.Fatalf("plugin compile left the cache dir %s empty", cache)
	}
}

// TestConsumeWithHandler runs the enrich handler plugin over a stream and
// into an output stream: records it skips are not emitted, the others come
// out enriched.
func TestConsumeWithHandler(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	in, out := e.NewStream(t, 2), e.NewStream(t, 1)
	input := `{"id":1,"type":"event","level":"error"}
{"id":2,"type":"heartbeat","level":"error"}
{"id":3,"type":"event","level":"info"}
{"id":4,"type":"event","level":"warn"}
`
	r := worker(t, env, []byte(input), "produce", "--stream", in, "--processor", "jsonlines", "--summary", "json")
	mustOK(t, r, "produce")
	cfg := writeFile(t, "c.yaml", "plugin_cache_dir: "+t.TempDir()+"\n")
	r = worker(t, append(env, "SHARDWORK_CONFIG="+cfg), nil, "consume", "--stream", in, "--processor", "jsonlines",
		"--handler", enrich, "--output-stream", out, "--max-records", "4", "--idle-exit", "20s")
	mustOK(t, r, "consume --handler")
	r = worker(t, env, nil, "consume", "--stream", out, "--processor", "jsonlines", "--max-records", "2", "--idle-exit", "20s")
	mustOK(t, r, "consume output")
	var ids []float64
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		ids = append(ids, m["id"].(float64))
		if len(m) <= 3 {
			t.Errorf("output record was not enriched: %s", l)
		}
	}
	if len(ids) != 2 || ids[0]+ids[1] != 5 {
		t.Fatalf("emitted ids %v, want 1 and 4 (error and warn, heartbeat skipped, info not routed)", ids)
	}
}

// TestExampleConfig checks the example worker.yaml with run --check: its
// processors resolve and its handler plugin loads with its configuration.
func TestExampleConfig(t *testing.T) {
	enrich := examplePlugin(t, "enrich")
	raw, err := os.ReadFile(repoFile(t, "cmd/worker/worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "build/plugins/enrich.wasm", enrich)
	cfg := writeFile(t, "worker.yaml", text)
	r := worker(t, nil, nil, "run", "--config", cfg, "--check", "--plugin-cache-dir", t.TempDir())
	mustOK(t, r, "run --check of the example config")
	for _, want := range []string{
		"pipeline alerts: stream app-events (app alerts-worker, jsonlines, checkpointer redis, from TRIM_HORIZON) -> handler " + enrich + " -> stream alerts (kpl-json)",
		"pipeline archive-copy: stream orders (app archive-copy, kpl-json, checkpointer redis, from LATEST) -> stream orders-archive (jsonlines)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run --check output lacks %q:\n%s", want, r.stdout)
		}
	}
	// A handler configuration the plugin rejects fails the check.
	bad := writeFile(t, "bad.yaml", strings.Replace(text, "skip_field: type", "skip_fieldz: type", 1))
	r = worker(t, nil, nil, "run", "--config", bad, "--check")
	if r.code != 2 || !regexp.MustCompile(`pipelines\[0\]\.handler = ".*enrich.wasm" \(from config file .*bad.yaml pipelines\[0\]\.handler\): plugin rejected its configuration: .*skip_fieldz`).MatchString(lastLine(r.stderr)) {
		t.Fatalf("bad handler_config: exit %d, %q", r.code, lastLine(r.stderr))
	}
}
