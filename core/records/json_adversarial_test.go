package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// jsonRoundTrip decodes in with s, re-encodes the value and decodes that
// again; it returns the value, the encoding and the decode error.
func jsonRoundTrip(t *testing.T, s JSONSerializer, in []byte) (any, []byte, error) {
	t.Helper()
	ctx := context.Background()
	v, err := s.Deserialize(ctx, [][]byte{in})
	if err != nil {
		return nil, nil, err
	}
	out, err := s.Serialize(ctx, v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if _, err := s.Deserialize(ctx, out); err != nil {
		t.Fatalf("decode own output: %v", err)
	}
	return v[0], out[0], nil
}

func wantMalformed(t *testing.T, err error, contains string) {
	t.Helper()
	var ie ItemErrors
	if !errors.As(err, &ie) || len(ie) != 1 || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %v, want one ErrMalformed item error containing %q", err, contains)
	}
}

func nested(open, close string, n int, mid string) []byte {
	return []byte(strings.Repeat(open, n) + mid + strings.Repeat(close, n))
}

// TestJSONDepthBound checks that nesting beyond encoding/json's limit of
// 10000 is rejected as malformed, and that nesting just under it decodes and
// re-encodes (past the fast encoder's own limit of maxFastJSONDepth, so
// through encoding/json) to the same text.
func TestJSONDepthBound(t *testing.T) {
	for _, s := range []JSONSerializer{{}, {UseNumber: true}} {
		for _, in := range [][]byte{
			nested("[", "]", 100_000, ""),
			nested(`{"a": `, "}", 100_000, "1"),
			nested("[", "]", 10_001, "1"),
			[]byte(strings.Repeat("[", 1<<20)), // unterminated
		} {
			_, _, err := jsonRoundTrip(t, s, in)
			wantMalformed(t, err, "exceeded max depth")
		}
		for _, in := range [][]byte{
			nested("[", "]", 9_999, "1"),
			nested(`{"a": `, "}", 9_999, "[]"),
		} {
			_, out, err := jsonRoundTrip(t, s, in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("depth 9999 re-encoded to %d bytes, want the %d input bytes", len(out), len(in))
			}
		}
	}
}

// TestJSONSerializeDeepGoValues checks values built in Go (not decoded):
// deeper than encoding/json's decoder allows, and cyclic.
func TestJSONSerializeDeepGoValues(t *testing.T) {
	deep := any("x")
	for range 100_000 {
		deep = []any{deep}
	}
	out, err := JSONSerializer{}.Serialize(context.Background(), []any{deep})
	if err != nil {
		t.Fatal(err)
	}
	if want := nested("[", "]", 100_000, `"x"`); !bytes.Equal(out[0], want) {
		t.Fatalf("100000 levels encoded to %d bytes, want %d", len(out[0]), len(want))
	}
	cyc := map[string]any{}
	cyc["self"] = cyc
	loop := []any{nil}
	loop[0] = loop
	for _, v := range []any{cyc, loop} {
		_, err := JSONSerializer{}.Serialize(context.Background(), []any{v})
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("cyclic value: %v, want ErrUnsupported", err)
		}
	}
}

// TestJSONNumbers covers numbers out of float64 range and very long number
// texts: the default decoder rejects what does not fit a float64 as
// malformed, UseNumber keeps the text exactly.
func TestJSONNumbers(t *testing.T) {
	digits := strings.Repeat("7", 1<<20)
	cases := []struct {
		in      string
		want    any    // default decoder's value; nil means rejected
		wantOut string // default encoder's output
	}{
		{in: "1e400"},
		{in: "-1e400"},
		{in: "1e999999"},
		{in: "1e" + strings.Repeat("9", 1<<20)},
		{in: digits},
		{in: "1e-400", want: 0.0, wantOut: "0"},
		{in: "1e-" + strings.Repeat("9", 1<<20), want: 0.0, wantOut: "0"},
		{in: "-0", want: math.Copysign(0, -1), wantOut: "-0"},
		{in: "-0.0e+0", want: math.Copysign(0, -1), wantOut: "-0"},
		{in: "0." + digits, want: 0.7777777777777778, wantOut: "0.7777777777777778"},
		{in: "1" + strings.Repeat("0", 308), want: 1e308, wantOut: "1e+308"},
		{in: "1.7976931348623157e308", want: math.MaxFloat64, wantOut: "1.7976931348623157e+308"},
	}
	for _, c := range cases {
		name := c.in
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		v, out, err := jsonRoundTrip(t, JSONSerializer{}, []byte(c.in))
		if c.want == nil {
			wantMalformed(t, err, "cannot unmarshal number")
		} else {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			f, ok := v.(float64)
			if !ok || f != c.want.(float64) || math.Signbit(f) != math.Signbit(c.want.(float64)) || string(out) != c.wantOut {
				t.Fatalf("%s: %#v encoded as %s, want %v as %s", name, v, out, c.want, c.wantOut)
			}
		}
		// UseNumber keeps any valid number text, byte for byte.
		v, out, err = jsonRoundTrip(t, JSONSerializer{UseNumber: true}, []byte(c.in))
		if err != nil || v != json.Number(c.in) || string(out) != c.in {
			t.Fatalf("%s with UseNumber: %v, %d bytes out", name, err, len(out))
		}
	}
}

// TestJSONLargeValues covers big arrays, objects and strings full of escapes
// (lone and paired surrogates, control characters, invalid UTF-8).
func TestJSONLargeValues(t *testing.T) {
	const n = 50_000
	arr := "[" + strings.Repeat("0, ", n-1) + "0]"
	v, out, err := jsonRoundTrip(t, JSONSerializer{}, []byte(arr))
	if err != nil || len(v.([]any)) != n || string(out) != arr {
		t.Fatalf("array: %v, %d bytes out", err, len(out))
	}
	var obj strings.Builder
	obj.WriteString(`{"k": 0`)
	for i := range n {
		obj.WriteString(`, "`)
		obj.WriteString(strings.Repeat("a", i%50))
		obj.WriteString(`": 1`)
	}
	obj.WriteString("}")
	if v, _, err := jsonRoundTrip(t, JSONSerializer{}, []byte(obj.String())); err != nil || len(v.(map[string]any)) != 51 {
		t.Fatalf("object with repeated keys: %v, %d keys", err, len(v.(map[string]any)))
	}
	for _, c := range []struct{ in, out string }{
		{`"` + strings.Repeat(`\ud800`, n) + `"`, `"` + strings.Repeat(`\ufffd`, n) + `"`},
		{`"` + strings.Repeat(`\udc00\udc00`, n) + `"`, `"` + strings.Repeat(`\ufffd`, 2*n) + `"`},
		{`"` + strings.Repeat(`\ud83d\ude00`, n) + `"`, `"` + strings.Repeat(`\ud83d\ude00`, n) + `"`},
		{`"` + strings.Repeat("😀", n) + `"`, `"` + strings.Repeat(`\ud83d\ude00`, n) + `"`},
		{`"` + strings.Repeat(`\u0000\u001F\/`, n) + `"`, `"` + strings.Repeat(`\u0000\u001f/`, n) + `"`},
		{"\"" + strings.Repeat("\xad", n) + "\"", `"` + strings.Repeat(`\ufffd`, n) + `"`},
	} {
		_, out, err := jsonRoundTrip(t, JSONSerializer{}, []byte(c.in))
		if err != nil || string(out) != c.out {
			t.Fatalf("string %.20q...: %v, got %.40q...", c.in, err, out)
		}
	}
	_, _, err = jsonRoundTrip(t, JSONSerializer{}, []byte(`"`+strings.Repeat(`\u12`, n)+`"`))
	wantMalformed(t, err, "invalid character")
}

// allocBytes reports the bytes f allocates, with one P so that other
// goroutines add little.
func allocBytes(f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm up
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestJSONLinearAllocation checks that decoding plus re-encoding allocates
// in proportion to the input: growing the input 8 times grows the bytes
// allocated less than 12 times (quadratic growth would be 64 times).
func TestJSONLinearAllocation(t *testing.T) {
	shapes := map[string]func(n int) []byte{
		"nesting": func(n int) []byte { return nested("[", "]", n/1000, "1") },
		"array":   func(n int) []byte { return []byte("[" + strings.Repeat("1.5, ", n) + "0]") },
		"object": func(n int) []byte {
			return []byte("{" + strings.Repeat(`"a": {"b": [], "c": null}, `, n/10) + `"z": 0}`)
		},
		"escapes":    func(n int) []byte { return []byte(`"` + strings.Repeat(`\ud83d\ude00\n`, n) + `"`) },
		"number":     func(n int) []byte { return []byte("0." + strings.Repeat("3", n)) },
		"bad utf-8":  func(n int) []byte { return []byte("\"" + strings.Repeat("\xad", n) + "\"") },
		"big number": func(n int) []byte { return []byte(strings.Repeat("9", n)) },
	}
	for name, shape := range shapes {
		for _, s := range []JSONSerializer{{}, {UseNumber: true}} {
			cost := func(n int) uint64 {
				in := shape(n)
				return allocBytes(func() {
					ctx := context.Background()
					if v, err := s.Deserialize(ctx, [][]byte{in}); err == nil {
						if _, err := s.Serialize(ctx, v); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
					}
				})
			}
			small, large := cost(10_000), cost(80_000)
			if large > 12*small+1<<16 {
				t.Fatalf("%s (UseNumber %v): %d bytes allocated for 8 times the input of %d bytes", name, s.UseNumber, large, small)
			}
		}
	}
}
