package main

import (
	"encoding/json"
	"errors"
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

// sameAsRef checks that process gives the reference implementation's
// verdict, output bytes and error class for in.
func sameAsRef(t *testing.T, e *enricher, in []byte, m Meta) {
	t.Helper()
	got, gerr := e.process(in, m)
	want, werr := e.processRef(in, m)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: error %v, reference %v", in, gerr, werr)
	}
	if gerr != nil {
		if errors.Is(werr, errNotObject) != errors.Is(gerr, errNotObject) || gerr.Error() != werr.Error() {
			t.Fatalf("%q: error %q, reference %q", in, gerr, werr)
		}
		return
	}
	if got.Skip != want.Skip || got.Emit != want.Emit || got.OutKey != want.OutKey || got.Message != want.Message || string(got.Out) != string(want.Out) {
		t.Fatalf("%q:\n got %+v %s\nwant %+v %s", in, got, got.Out, want, want.Out)
	}
}

func refEnricher(t testing.TB) *enricher {
	e, err := newEnricher(Config{SkipField: "type", SkipValues: []string{"heartbeat", "", "é<x>"}, RouteField: "level", RouteValues: []string{"error", "wa\"rn"},
		Add: map[string]any{"env": "prod"}, PartitionKeyField: "user"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var refMeta = Meta{ShardID: "shardId-000000000001", SequenceNumber: "49<&>", PartitionKey: "pk\u2028", SubSequence: -3, ArrivalNanos: 1}

func TestScannerCases(t *testing.T) {
	e := refEnricher(t)
	cases := map[string]struct{ skip, emit bool }{
		// Escaped keys and values decode before they are compared.
		`{"typ\u0065":"heart\u0062eat"}`: {skip: true},
		`{"level":"\u0065rror"}`:         {emit: true},
		`{"level":"wa\"rn"}`:             {emit: true},
		`{"type":"\u00e9<x>"}`:           {skip: true},
		`{"type":"é<x>"}`:                {skip: true},
		`{"type":"heartbeat\n"}`:         {},
		// A null value decodes to the empty string, which is a skip value here.
		`{"type":null}`: {skip: true},
		`{"type":1}`:    {},
		// Only top-level fields count; nested ones with the same names do not.
		`{"a":{"type":"heartbeat","level":"error"}}`: {},
		`{"a":[{"level":"error"}],"level":"error"}`:  {emit: true},
		`{"s":"}{\"type\":\"heartbeat\"}"}`:          {},
		// Duplicate keys: the last occurrence wins, as with a map.
		`{"level":"error","level":"info"}`:          {},
		`{"level":"info","level":"error"}`:          {emit: true},
		`{"type":"heartbeat","type":"x"}`:           {},
		` { "level" : "error" , "user" : "u\"1" } `: {emit: true},
		`{}`: {}, ` {	} `: {},
	}
	for in, want := range cases {
		v, err := e.process([]byte(in), refMeta)
		if err != nil || v.Skip != want.skip || v.Emit != want.emit {
			t.Errorf("%s: %+v %v, want skip=%v emit=%v", in, v, err, want.skip, want.emit)
		}
		if !v.Skip && !json.Valid(v.Out) {
			t.Errorf("%s: invalid output %s", in, v.Out)
		}
		sameAsRef(t, e, []byte(in), refMeta)
	}
	for _, in := range []string{`{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}",
		`{"a":"\u12"}`, `{"a":tru}`, `{"a":[1,]}`, `{"a":1}}`, `{"a":1} x`, `{a:1}`, `{"a":1`, `"x`, ``, ` `, `[1]`, `null`, `"s"`, `-0.5e+7`,
		"{\"a\":\"\xff\"}", "{\"\xff\":\"\xfe\"}", "{\"type\":\"\xffheartbeat\"}"} {
		sameAsRef(t, e, []byte(in), refMeta)
	}
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)
	sameAsRef(t, e, []byte(`{"a":`+deep+`}`), refMeta)
	deeper := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := e.process([]byte(`{"a":`+deeper+`}`), refMeta); err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
		t.Fatalf("nesting beyond %d: %v", maxDepth, err)
	}
	sameAsRef(t, e, []byte(`{"a":`+deeper+`}`), refMeta)
}

// FuzzScannerMatchesEncodingJSON compares the scanning implementation with
// the encoding/json one it replaced, byte for byte.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"level":"error","a":[1,{"b":null}]}`, `{"typ\u0065":"heartbeat"}`, `{"level":"info","level":"wa\"rn","user":"\ud800"}`,
		` {"a":-1.5e3,"b":true,"c":false,"d":"\/"} `, `[{}]`, "{\"user\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	e := refEnricher(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsRef(t, e, b, refMeta)
	})
}

func BenchmarkProcess(b *testing.B) {
	e, _ := newEnricher(defaultConfig())
	in := []byte(`{"level":"error","i":42,"text":"some payload of a typical size","ctx":{"a":[1,2,3],"b":"x"}}`)
	m := Meta{ShardID: "shardId-000000000000", SequenceNumber: "49000042", PartitionKey: "pk-42"}
	for _, impl := range []struct {
		name string
		f    func([]byte, Meta) (Verdict, error)
	}{{"scanner", e.process}, {"encoding-json", e.processRef}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := impl.f(in, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPlainString(t *testing.T) {
	for _, s := range []string{"", "a", "shardId-000000000001", "49590338271490256608559692538361571095921575989136588898", "0123456<", "01234567<", "0123456789abcde&",
		"x>", "\x1f", "01234567\x7f", "é", "0123456789\"", "0123456789\\", "\u2028", strings.Repeat("k", 17) + "\n"} {
		b, _ := json.Marshal(s)
		// Conservative: false for every non-ASCII string, exact otherwise.
		want := string(b) == `"`+s+`"` && !hasNonASCII(s)
		if got := plainString(s); got != want {
			t.Errorf("plainString(%q) = %v, want %v", s, got, want)
		}
		if got := string(appendJSONString(nil, s)); got != string(b) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, b)
		}
		if n := quotedLen(s); n < len(b) {
			t.Errorf("quotedLen(%q) = %d < %d", s, n, len(b))
		}
	}
}

func FuzzPlainString(f *testing.F) {
	f.Add("shardId-000000000001<")
	f.Fuzz(func(t *testing.T, s string) {
		b, _ := json.Marshal(s)
		if got, want := plainString(s), string(b) == `"`+s+`"` && !hasNonASCII(s); got != want {
			t.Fatalf("plainString(%q) = %v, want %v", s, got, want)
		}
		if got := string(appendJSONString(nil, s)); got != string(b) || quotedLen(s) < len(b) {
			t.Fatalf("appendJSONString(%q) = %s, want %s (bound %d)", s, got, b, quotedLen(s))
		}
	})
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func TestValueSet(t *testing.T) {
	few := newValueSet([]string{"a", "", "bc"})
	many := newValueSet([]string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", ""})
	for _, c := range []struct {
		s    valueSet
		v    string
		want bool
	}{{few, "a", true}, {few, "", true}, {few, "b", false}, {few, "bcd", false}, {many, "v8", true}, {many, "", true}, {many, "v9", false}, {newValueSet(nil), "", false}} {
		if got := c.s.has([]byte(c.v)); got != c.want {
			t.Errorf("has(%q) in %v = %v, want %v", c.v, c.s, got, c.want)
		}
	}
}
