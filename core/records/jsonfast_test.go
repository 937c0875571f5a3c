package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// slowPyJSON is the reference: encoding/json, then Python formatting.
func slowPyJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return pythonJSON(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
}

func checkFastJSON(t testing.TB, v any) {
	t.Helper()
	fast, ok := appendPyJSON(nil, v, 0)
	if !ok {
		t.Fatalf("fast path refused %#v", v)
	}
	if slow := slowPyJSON(t, v); !bytes.Equal(fast, slow) {
		t.Fatalf("%#v:\nfast %s\nslow %s", v, fast, slow)
	}
}

func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, "", "a\"b\\c\n\r\t\b\f\x00\x1f\x7f", "é✓日本😀", "\u2028\u2029", "bad \xff\xfe utf8", "<&>",
		0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64,
		0, -1, math.MaxInt64, int64(math.MinInt64), uint64(math.MaxUint64), int32(-7),
		[]any{}, []any(nil), map[string]any{}, map[string]any(nil),
		map[string]any{"b": []any{1, "x", nil, map[string]any{"z": 1.25, "a": false}}, "a": "é", "": 0, "\xff": 1},
	}
	for _, v := range values {
		checkFastJSON(t, v)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), struct{}{}, []int{1}, map[string]int{}} {
		if _, ok := appendPyJSON(nil, v, 0); ok {
			t.Fatalf("fast path took %#v", v)
		}
	}
	deep := any(1.0)
	for range maxFastJSONDepth + 5 {
		deep = []any{deep}
	}
	if _, ok := appendPyJSON(nil, deep, 0); ok {
		t.Fatal("fast path took a value deeper than its limit")
	}
	checkFastJSON(t, []any{[]any{[]any{}}})
}

// TestJSONSerializeArena checks that items written into the shared arena
// stay intact across its growth, mixed with items encoding/json writes.
func TestJSONSerializeArena(t *testing.T) {
	items := make([]any, 3000)
	for i := range items {
		switch i % 3 {
		case 0:
			items[i] = map[string]any{"i": i, "s": string(bytes.Repeat([]byte{'a' + byte(i%26)}, i%700))}
		case 1:
			items[i] = struct{ N int }{i} // encoding/json path
		default:
			items[i] = []any{float64(i) / 7, "é"}
		}
	}
	out, err := JSONSerializer{}.Serialize(t.Context(), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if want := slowPyJSON(t, it); !bytes.Equal(out[i], want) {
			t.Fatalf("item %d: %s, want %s", i, out[i], want)
		}
	}
}

func TestJSONUseNumber(t *testing.T) {
	s := JSONSerializer{UseNumber: true}
	in := []byte(`{"big": 12345678901234567890123, "f": 1.50}`)
	v, err := s.Deserialize(t.Context(), [][]byte{in, []byte(`{"a": 1} x`)})
	var ie ItemErrors
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Index != 1 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing data: %v", err)
	}
	if n := v[0].(map[string]any)["big"]; n != json.Number("12345678901234567890123") {
		t.Fatalf("big = %#v", n)
	}
	out, err := s.Serialize(t.Context(), v[:1])
	if err != nil || string(out[0]) != `{"big": 12345678901234567890123, "f": 1.50}` {
		t.Fatalf("%s %v", out[0], err)
	}
}
