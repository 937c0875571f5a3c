package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testCLI(env map[string]string) (*cli, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cli{
		env:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		stdin:  strings.NewReader(""),
		stdout: &out, stderr: &errb,
	}, &out, &errb
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(file, []byte("stream: from-file\nshards: 3\nregion: eu-west-1\nwait: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		env        map[string]string
		args       []string
		stream     string
		from       string
		shards     int
		region     string
		positional []string
	}{
		{"file", nil, []string{"--config", file}, "from-file", "config file " + file + " key stream", 3, "eu-west-1", nil},
		{"env over file", map[string]string{"SHARDWORK_STREAM": "from-env", "AWS_REGION": "us-west-2"}, []string{"--config", file}, "from-env", "env SHARDWORK_STREAM", 3, "us-west-2", nil},
		{"SHARDWORK_ over AWS_", map[string]string{"SHARDWORK_REGION": "ap-south-1", "AWS_REGION": "us-west-2"}, []string{"--config", file}, "from-file", "config file " + file + " key stream", 3, "ap-south-1", nil},
		{"flag over env", map[string]string{"SHARDWORK_STREAM": "from-env"}, []string{"--config", file, "--stream", "from-flag", "--shards=7"}, "from-flag", "flag --stream", 7, "eu-west-1", nil},
		{"config from env", map[string]string{"SHARDWORK_CONFIG": file}, []string{"pos1", "--shards", "2", "pos2"}, "from-file", "config file " + file + " key stream", 2, "eu-west-1", []string{"pos1", "pos2"}},
		{"defaults", nil, nil, "", "default", 1, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := testCLI(tc.env)
			cfg, err := c.loadConfig("stream create", tc.args, optStream, optShards, optWait)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.str("stream"); got != tc.stream {
				t.Errorf("stream = %q, want %q", got, tc.stream)
			}
			if got := cfg.from("stream"); got != tc.from {
				t.Errorf("stream from %q, want %q", got, tc.from)
			}
			if got := cfg.int("shards"); got != tc.shards {
				t.Errorf("shards = %d, want %d", got, tc.shards)
			}
			if got := cfg.str("region"); got != tc.region {
				t.Errorf("region = %q, want %q", got, tc.region)
			}
			if got := cfg.dur("wait"); tc.name == "file" && got != 5*time.Second {
				t.Errorf("wait = %v, want 5s", got)
			}
			if strings.Join(cfg.args, ",") != strings.Join(tc.positional, ",") {
				t.Errorf("positional %q, want %q", cfg.args, tc.positional)
			}
		})
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("shards: many\n"), 0o644)
	list := filepath.Join(dir, "list.yaml")
	os.WriteFile(list, []byte("stream: [a, b]\n"), 0o644)
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--config", bad}, `invalid config: shards = "many" (from config file ` + bad + ` key shards): not an integer`},
		{nil, []string{"--config", list}, `key "stream" must be a single value`},
		{map[string]string{"SHARDWORK_WAIT": "forever"}, nil, `invalid config: wait = "forever" (from env SHARDWORK_WAIT): not a duration`},
		{map[string]string{"SHARDWORK_LOG_FORMAT": "xml"}, nil, `log_format = "xml" (from env SHARDWORK_LOG_FORMAT): must be one of auto, text, json`},
		{nil, []string{"--shards", "-1"}, `shards = "-1" (from flag --shards): must be at least 1`},
	}
	for _, tc := range cases {
		c, _, _ := testCLI(tc.env)
		_, err := c.loadConfig("stream create", tc.args, optStream, optShards, optWait)
		if err == nil {
			t.Fatalf("%v %v: no error", tc.env, tc.args)
		}
		var stderr bytes.Buffer
		if code := report(err, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", err, code)
		}
		if !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("message %q, want one line containing %q", stderr.String(), tc.want)
		}
	}
}

func TestReport(t *testing.T) {
	var b bytes.Buffer
	if code := report(nil, &b); code != 0 || b.Len() != 0 {
		t.Fatalf("nil: %d %q", code, b.String())
	}
	if code := report(errHelp, &b); code != 0 {
		t.Fatalf("help: %d", code)
	}
	if code := report(errors.New("two\nlines"), &b); code != exitFailure || b.String() != "worker: two; lines\n" {
		t.Fatalf("failure: %d %q", code, b.String())
	}
}

func TestBoolFlags(t *testing.T) {
	c, _, _ := testCLI(map[string]string{"SHARDWORK_META": "true"})
	cfg, err := c.loadConfig("consume", []string{"--raw"}, optMeta, optRaw)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.bool("meta") || !cfg.bool("raw") {
		t.Fatalf("meta %v raw %v", cfg.bool("meta"), cfg.bool("raw"))
	}
	cfg, err = c.loadConfig("consume", []string{"--meta=false"}, optMeta, optRaw)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.bool("meta") || cfg.bool("raw") {
		t.Fatalf("meta %v raw %v", cfg.bool("meta"), cfg.bool("raw"))
	}
}

func TestFieldKey(t *testing.T) {
	cases := map[string]string{
		`{"k":"abc","x":1}`: "abc",
		`{"k":42}`:          "42",
		`{"k":{"a":1}}`:     `{"a":1}`,
		`{"x":1}`:           "",
		`[1,2]`:             "",
		`not json`:          "",
	}
	for line, want := range cases {
		if got := fieldKey([]byte(line), "k"); got != want {
			t.Errorf("fieldKey(%s) = %q, want %q", line, got, want)
		}
	}
}

func TestParseDecodeInput(t *testing.T) {
	ev := `{"Records":[{"eventID":"shardId-000000000001:495","kinesis":{"partitionKey":"pk","sequenceNumber":"495","data":"aGk=","approximateArrivalTimestamp":1700000000.5}}]}`
	recs, err := parseDecodeInput([]byte(ev), "auto", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Data) != "hi" || recs[0].ShardID != "shardId-000000000001" || recs[0].PartitionKey != "pk" ||
		!recs[0].ArrivalTime.Equal(time.Unix(1700000000, 5e8)) {
		t.Fatalf("event parsed as %+v", recs)
	}
	// JSON that is not an event is a raw payload in auto mode, an error in
	// lambda mode.
	recs, err = parseDecodeInput([]byte(`{"a":1}`), "auto", "k")
	if err != nil || len(recs) != 1 || string(recs[0].Data) != `{"a":1}` || recs[0].PartitionKey != "k" {
		t.Fatalf("raw JSON payload: %+v %v", recs, err)
	}
	if _, err := parseDecodeInput([]byte(`{"a":1}`), "lambda", ""); err == nil {
		t.Fatal("lambda mode accepted a non-event")
	}
	if _, err := parseDecodeInput([]byte(`{"Records":[{"kinesis":{"data":"%%%"}}]}`), "auto", ""); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

func TestItemFromLine(t *testing.T) {
	if it, err := itemFromLine("string", []byte("not json")); err != nil || it != "not json" {
		t.Fatalf("string: %v %v", it, err)
	}
	if _, err := itemFromLine("json", []byte("not json")); err == nil {
		t.Fatal("json accepted invalid JSON")
	}
	it, err := itemFromLine("msgpack", []byte(`{"a":1}`))
	if m, ok := it.(map[string]any); err != nil || !ok || m["a"] != 1.0 {
		t.Fatalf("msgpack item %#v %v", it, err)
	}
	it, err = itemFromLine("jsonlines", []byte(`{"b":2,"a":1}`))
	if b, _ := itemJSON(it); err != nil || string(b) != `{"b":2,"a":1}` {
		t.Fatalf("json item keeps the text: %s %v", b, err)
	}
}

func TestUnknownCommand(t *testing.T) {
	c, _, errb := testCLI(nil)
	_ = c
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"nope"}, func(string) (string, bool) { return "", false }, strings.NewReader(""), &bytes.Buffer{}, errb)
	if code := report(err, &stderr); code != exitUsage || !strings.Contains(stderr.String(), `unknown command "nope"`) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// FuzzParseDecodeInput: any input is either decoded into records or
// rejected with an error, never a panic; a raw payload is kept whole.
func FuzzParseDecodeInput(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventID":"shardId-1:2","kinesis":{"partitionKey":"k","sequenceNumber":"2","data":"aGk=","approximateArrivalTimestamp":1.5}}]}`), "auto")
	f.Add([]byte(`{"Records":[{}]}`), "lambda")
	f.Add([]byte("\xf3\x89\x9a\xc2 raw"), "raw")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		recs, err := parseDecodeInput(data, format, "pk")
		if err != nil {
			return
		}
		if format == "raw" && (len(recs) != 1 || !bytes.Equal(recs[0].Data, data)) {
			t.Fatalf("raw input not kept whole: %d records", len(recs))
		}
	})
}

// FuzzConfigFile: any YAML file is either accepted or rejected with a
// usage error, never a panic.
func FuzzConfigFile(f *testing.F) {
	f.Add("stream: s\nshards: 2\n")
	f.Add("pipelines:\n  - name: a\n    stream: s\n    handler_config: {a: [1, 2]}\n")
	f.Add("- a\n- b\n")
	f.Add("log_level: [x]\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		c, _, _ := testCLI(nil)
		cfg, err := c.loadConfig("run", []string{"--config", p}, optStream, optShards, optListen)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("not a usage error: %v", err)
			}
			return
		}
		var specs []pipelineSpec
		if err := cfg.decodePipelines(&specs, pipelineKeys); err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("pipelines: not a usage error: %v", err)
			}
		}
	})
}
