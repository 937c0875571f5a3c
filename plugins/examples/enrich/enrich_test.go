package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestProcess(t *testing.T) {
	e, err := newEnricher(Config{SkipField: "type", SkipValues: []string{"heartbeat"}, RouteField: "level", RouteValues: []string{"error"},
		Add: map[string]any{"env": "prod", "v": 2}, PartitionKeyField: "user"})
	if err != nil {
		t.Fatal(err)
	}
	m := Meta{ShardID: "shardId-000000000001", SequenceNumber: "49", PartitionKey: "pk", SubSequence: 2, ArrivalNanos: 1_700_000_000_000_000_000}
	v, err := e.process([]byte(`{"level":"error","user":"u1","n":1}`), m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"level":"error","user":"u1","n":1,"_shard":"shardId-000000000001","_sequence":"49","_subsequence":2,"_partition_key":"pk","_arrival":"2023-11-14T22:13:20Z","env":"prod","v":2}`
	if string(v.Out) != want || !v.Emit || v.OutKey != "u1" || v.Skip {
		t.Fatalf("got %+v\n%s", v, v.Out)
	}
	v, _ = e.process([]byte(`{"level":"info"}`), m)
	if v.Emit || v.Skip || !json.Valid(v.Out) {
		t.Fatalf("info record: %+v", v)
	}
	v, _ = e.process([]byte(`{}`), m)
	if !json.Valid(v.Out) {
		t.Fatalf("empty object: %s", v.Out)
	}
	v, _ = e.process([]byte(`{"type":"heartbeat"}`), m)
	if !v.Skip {
		t.Fatalf("heartbeat not skipped: %+v", v)
	}
	for in, msg := range map[string]string{`{"a":`: "invalid JSON", `[1]`: "not a JSON object", `null`: "not a JSON object", `nope`: "invalid JSON"} {
		if _, err := e.process([]byte(in), m); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", in, err, msg)
		}
	}
}

func TestParseConfig(t *testing.T) {
	if _, err := parseConfig([]byte(`{"nope":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
	c, err := parseConfig(nil)
	if err != nil || c.SkipField != "type" {
		t.Fatalf("%+v %v", c, err)
	}
}

func FuzzProcess(f *testing.F) {
	f.Add([]byte(`{"level":"error","a":[1,{"b":null}]}`))
	e, _ := newEnricher(defaultConfig())
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := e.process(b, Meta{ShardID: "s\"", SequenceNumber: "1"})
		if err == nil && !v.Skip && !json.Valid(v.Out) {
			t.Fatalf("invalid output %q from %q", v.Out, b)
		}
	})
}
