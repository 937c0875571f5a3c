package records

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// maxFuzzInput bounds the inputs the fuzz targets examine; longer ones
// return at once. The fuzzing engine minimizes every input that reaches new
// coverage by trying to remove each range of bytes, which takes a number of
// calls quadratic in the input's length: for a 1.4 KB input about a million
// calls, which keeps a worker busy for the whole minimization timeout (60 s
// by default) with the exec counter at 0/sec. At 256 bytes a minimization
// takes some 33,000 calls. Long inputs (deep nesting, long numbers and
// strings, big arrays) are covered by the unit tests in
// json_adversarial_test.go.
const maxFuzzInput = 256

// checkDecodeErr asserts that a decoder's error is an ItemErrors whose
// entries all wrap ErrMalformed.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	items, batch := SplitErrors(err)
	if batch != nil {
		t.Fatalf("batch error %v, want per-item errors", batch)
	}
	for _, e := range items {
		if !errors.Is(e, ErrMalformed) {
			t.Fatalf("item error %v does not wrap ErrMalformed", e)
		}
	}
}

// fuzzRecords splits b into user records at zero bytes; keys come from the
// first byte of each piece.
func fuzzRecords(b []byte, withEHK bool) []UserRecord {
	var out []UserRecord
	for i, p := range bytes.Split(b, []byte{0}) {
		r := UserRecord{Data: p, PartitionKey: fmt.Sprintf("k%d", len(p)%7)}
		if withEHK && len(p) > 0 && p[0]%2 == 1 {
			r.ExplicitHashKey = fmt.Sprint(i % 3)
		}
		out = append(out, r)
	}
	return out
}

// roundTrip aggregates in, checks the limit, deaggregates and compares.
func roundTrip(t *testing.T, a Aggregator, in []UserRecord, maxSize int, keys bool) {
	t.Helper()
	ctx := context.Background()
	out, err := a.Aggregate(ctx, in, maxSize)
	items, batch := SplitErrors(err)
	if batch != nil {
		t.Fatal(batch)
	}
	skip := map[int]bool{}
	for _, e := range items {
		if !errors.Is(e, ErrTooLarge) && !errors.Is(e, ErrUnsupported) {
			t.Fatalf("aggregate item error %v", e)
		}
		skip[e.Index] = true
	}
	var want []UserRecord
	for i, r := range in {
		if !skip[i] {
			want = append(want, r)
		}
	}
	var recs []Record
	for _, o := range out {
		if len(o.Data)+len(o.PartitionKey) > maxSize {
			t.Fatalf("aggregate of %d bytes over the limit %d", len(o.Data)+len(o.PartitionKey), maxSize)
		}
		recs = append(recs, Record{Data: o.Data, PartitionKey: o.PartitionKey, ExplicitHashKey: o.ExplicitHashKey})
	}
	got, err := a.Deaggregate(ctx, recs)
	if err != nil {
		t.Fatalf("deaggregate own output: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("round trip gave %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("record %d: %q, want %q", i, got[i].Data, want[i].Data)
		}
		if keys && (got[i].PartitionKey != want[i].PartitionKey || got[i].ExplicitHashKey != want[i].ExplicitHashKey) {
			t.Fatalf("record %d keys (%q, %q), want (%q, %q)", i, got[i].PartitionKey, got[i].ExplicitHashKey, want[i].PartitionKey, want[i].ExplicitHashKey)
		}
	}
}

func fuzzDeaggregate(t *testing.T, a Aggregator, data []byte) []Record {
	t.Helper()
	out, err := a.Deaggregate(context.Background(), []Record{{Data: data, PartitionKey: "p", SequenceNumber: "1"}})
	checkDecodeErr(t, err)
	for i, r := range out {
		if r.SequenceNumber != "1" || (r.Aggregated && r.SubSequenceNumber != int64(i)) {
			t.Fatalf("record %d metadata %+v", i, r)
		}
	}
	return out
}

func FuzzKPL(f *testing.F) {
	f.Add(mustHexF("f3899ac20a01611a0708001a033132331a0808001a047465737444b47432846de9a761c2774e0a3d26e6"), 100)
	f.Add([]byte("plain\x00data\x00\x00x"), 30)
	f.Add(append(bytes.Clone(KPLMagic), make([]byte, 16)...), 1000)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		if len(data) > maxFuzzInput {
			return
		}
		fuzzDeaggregate(t, KPLAggregator{}, data)
		fuzzDeaggregate(t, KPLAggregator{Strict: true}, data)
		if maxSize > 0 {
			roundTrip(t, KPLAggregator{}, fuzzRecords(data, true), maxSize%5000+1, true)
		}
	})
}

func FuzzNetstring(f *testing.F) {
	f.Add([]byte("3:123,4:test,"), 20)
	f.Add([]byte("0:,"), 5)
	f.Add([]byte("3:ab,"), 5)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		if len(data) > maxFuzzInput {
			return
		}
		fuzzDeaggregate(t, NetstringAggregator{}, data)
		if maxSize > 0 {
			roundTrip(t, NetstringAggregator{}, fuzzRecords(data, false), maxSize%5000+1, false)
		}
	})
}

func FuzzNewline(f *testing.F) {
	f.Add([]byte("123\ntest\n"), 20)
	f.Add([]byte("\n\n{}\n"), 5)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		if len(data) > maxFuzzInput {
			return
		}
		for _, r := range fuzzDeaggregate(t, NewlineAggregator{}, data) {
			if len(r.Data) == 0 || bytes.IndexByte(r.Data, '\n') >= 0 {
				t.Fatalf("row %q", r.Data)
			}
		}
		if maxSize > 0 {
			roundTrip(t, NewlineAggregator{}, fuzzRecords(data, false), maxSize%5000+1, false)
		}
	})
}

func FuzzList(f *testing.F) {
	f.Add([]byte(`[123, "test"]`), 20)
	f.Add([]byte(`[]`), 5)
	f.Add([]byte(`[1, {"a": [2]}`), 5)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		if len(data) > maxFuzzInput {
			return
		}
		fuzzDeaggregate(t, ListAggregator{}, data)
		if maxSize > 0 {
			// Make JSON values of the pieces.
			in := fuzzRecords(data, false)
			for i := range in {
				in[i].Data = pythonJSON(fmt.Appendf(nil, "%q", in[i].Data))
			}
			roundTrip(t, ListAggregator{}, in, maxSize%5000+1, false)
		}
	})
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"test": 123}`))
	f.Add([]byte(`[1, "é\u2713", null, true, {"a": 1.5e300}]`))
	f.Add([]byte(`{"a": }`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		ctx := context.Background()
		s := JSONSerializer{}
		v, err := s.Deserialize(ctx, [][]byte{data})
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		b, err := s.Serialize(ctx, v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		if fast, ok := appendPyJSON(nil, v[0], 0); ok {
			if slow := slowPyJSON(t, v[0]); !bytes.Equal(fast, slow) {
				t.Fatalf("direct encoding %s differs from encoding/json's %s", fast, slow)
			}
		}
		v2, err := s.Deserialize(ctx, b)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("decode(encode(%#v)) = %#v, %v", v, v2, err)
		}
		// With UseNumber, numbers keep their text through a round trip.
		n := JSONSerializer{UseNumber: true}
		v, err = n.Deserialize(ctx, [][]byte{data})
		if err != nil {
			t.Fatalf("UseNumber rejects what the default accepts: %v", err)
		}
		if b, err = n.Serialize(ctx, v); err != nil {
			t.Fatalf("UseNumber re-encode %#v: %v", v, err)
		}
		if v2, err = n.Deserialize(ctx, b); err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("UseNumber decode(encode(%#v)) = %#v, %v", v, v2, err)
		}
	})
}

func FuzzMsgpack(f *testing.F) {
	f.Add([]byte("\x81\xa4test{"))
	f.Add([]byte("\x81\xa4test\xcd\x01\xc8"))
	f.Add([]byte("\x93\xc0\xc3\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\xdd\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		ctx := context.Background()
		s := MsgpackSerializer{}
		v, err := s.Deserialize(ctx, [][]byte{data})
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		// Encoding is canonical after one round: compare bytes, so NaN
		// values compare equal.
		b1, err := s.Serialize(ctx, v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		v2, err := s.Deserialize(ctx, b1)
		if err != nil {
			t.Fatalf("decode own output %x: %v", b1[0], err)
		}
		b2, err := s.Serialize(ctx, v2)
		if err != nil || !bytes.Equal(b1[0], b2[0]) {
			t.Fatalf("encode(decode(%x)) = %x, %v", b1[0], b2, err)
		}
	})
}

func FuzzString(f *testing.F) {
	f.Add([]byte("héllo"))
	f.Add([]byte("ab\xffc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		ctx := context.Background()
		v, err := StringSerializer{}.Deserialize(ctx, [][]byte{data})
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		b, err := StringSerializer{}.Serialize(ctx, v)
		if err != nil || !bytes.Equal(b[0], data) {
			t.Fatalf("encode(decode(%q)) = %q, %v", data, b, err)
		}
	})
}

func mustHexF(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		fmt.Sscanf(s[2*i:2*i+2], "%02x", &b[i])
	}
	return b
}
