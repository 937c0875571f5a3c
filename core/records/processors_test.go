package records

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestByName(t *testing.T) {
	want := []string{"string", "json", "jsonlines", "jsonlist", "msgpack", "kpl-json", "kpl-string"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		p, err := ByName(n)
		if err != nil || p.Name != n || p.Serializer == nil || p.Aggregator == nil {
			t.Fatalf("ByName(%q) = %+v, %v", n, p, err)
		}
	}
	if _, err := ByName("avro"); err == nil || !strings.Contains(err.Error(), `"avro"`) || !strings.Contains(err.Error(), "kpl-json") {
		t.Fatalf("ByName(avro) error = %v", err)
	}
}

var aggregators = map[string]Aggregator{
	"simple": SimpleAggregator{}, "newline": NewlineAggregator{}, "netstring": NetstringAggregator{},
	"list": ListAggregator{}, "kpl": KPLAggregator{},
}

// TestAggregateLimit checks, for random records and limits, that every
// output fits its limit, that outputs cover the inputs in order, and that
// SizeAlone decides exactly which records are rejected.
func TestAggregateLimit(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for name, a := range aggregators {
		t.Run(name, func(t *testing.T) {
			for round := 0; round < 200; round++ {
				maxSize := 20 + rng.IntN(600)
				in := make([]UserRecord, rng.IntN(60))
				for i := range in {
					pk := fmt.Sprintf("k%d", rng.IntN(1+rng.IntN(300)))
					d := []byte(fmt.Sprintf("%q", strings.Repeat("x", rng.IntN(maxSize/2+50))))
					var ehk string
					if name == "kpl" && rng.IntN(3) == 0 {
						ehk = fmt.Sprint(rng.Uint64())
					}
					in[i] = UserRecord{PartitionKey: pk, ExplicitHashKey: ehk, Data: d}
				}
				out, err := a.Aggregate(ctx, in, maxSize)
				items, batch := SplitErrors(err)
				if batch != nil {
					t.Fatal(batch)
				}
				rejected := map[int]bool{}
				for _, e := range items {
					if !errors.Is(e, ErrTooLarge) {
						t.Fatalf("item %d: %v does not wrap ErrTooLarge", e.Index, e.Err)
					}
					rejected[e.Index] = true
				}
				var kept []UserRecord
				for i, r := range in {
					if (a.SizeAlone(r) > maxSize) != rejected[i] {
						t.Fatalf("record %d: SizeAlone %d, limit %d, rejected %v", i, a.SizeAlone(r), maxSize, rejected[i])
					}
					if !rejected[i] {
						kept = append(kept, r)
					}
				}
				var recs []Record
				n := 0
				for i, o := range out {
					if size := len(o.Data) + len(o.PartitionKey); size > maxSize {
						t.Fatalf("output %d: %d bytes over limit %d", i, size, maxSize)
					}
					if o.Count < 1 || o.PartitionKey != kept[n].PartitionKey {
						t.Fatalf("output %d: count %d pk %q", i, o.Count, o.PartitionKey)
					}
					n += o.Count
					recs = append(recs, Record{Data: o.Data, PartitionKey: o.PartitionKey})
				}
				if n != len(kept) {
					t.Fatalf("counts sum to %d, want %d", n, len(kept))
				}
				back, err := a.Deaggregate(ctx, recs)
				if err != nil {
					t.Fatal(err)
				}
				if len(back) != len(kept) {
					t.Fatalf("deaggregated %d, want %d", len(back), len(kept))
				}
				for i := range back {
					if !bytes.Equal(back[i].Data, kept[i].Data) {
						t.Fatalf("record %d: %q, want %q", i, back[i].Data, kept[i].Data)
					}
				}
			}
		})
	}
}

// TestAggregateExactFit checks the boundary: a record whose SizeAlone equals
// the limit is accepted, one byte more is rejected.
func TestAggregateExactFit(t *testing.T) {
	ctx := context.Background()
	for name, a := range aggregators {
		r := UserRecord{PartitionKey: "pk", Data: []byte(`"` + strings.Repeat("y", 100) + `"`)}
		limit := a.SizeAlone(r)
		if out, err := a.Aggregate(ctx, []UserRecord{r}, limit); err != nil || len(out) != 1 || len(out[0].Data)+2 > limit {
			t.Fatalf("%s: at the limit: %v, %d outputs", name, err, len(out))
		}
		out, err := a.Aggregate(ctx, []UserRecord{r, r}, limit-1)
		var ie ItemErrors
		if !errors.As(err, &ie) || len(ie) != 2 || ie[1].Index != 1 || !errors.Is(err, ErrTooLarge) || len(out) != 0 {
			t.Fatalf("%s: over the limit: %v, %d outputs", name, err, len(out))
		}
		if _, err := a.Aggregate(ctx, []UserRecord{r}, 0); err == nil || errors.As(err, &ie) {
			t.Fatalf("%s: maxSize 0: %v", name, err)
		}
	}
}

func TestAggregateUnsupported(t *testing.T) {
	ctx := context.Background()
	in := []UserRecord{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "a", Data: []byte("a\nb")}, {PartitionKey: "a", Data: []byte("2")}}
	out, err := NewlineAggregator{}.Aggregate(ctx, in, 100)
	var ie ItemErrors
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Index != 1 || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("newline: %v", err)
	}
	if len(out) != 1 || string(out[0].Data) != "1\n2\n" || out[0].Count != 2 {
		t.Fatalf("newline output %+v", out)
	}
	_, err = ListAggregator{}.Aggregate(ctx, []UserRecord{{PartitionKey: "a", Data: []byte("{")}}, 100)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("list: %v", err)
	}
	_, err = StringSerializer{}.Serialize(ctx, []any{"ok", 3, []byte{0xff}})
	if !errors.As(err, &ie) || len(ie) != 2 || ie[0].Index != 1 || ie[1].Index != 2 {
		t.Fatalf("string: %v", err)
	}
	_, err = JSONSerializer{}.Serialize(ctx, []any{make(chan int)})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("json: %v", err)
	}
}

// kplBody wraps a protobuf body with the magic and a correct MD5.
func kplBody(body []byte) []byte {
	sum := md5.Sum(body)
	return append(append(append([]byte{}, KPLMagic...), body...), sum[:]...)
}

func kplRec(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func TestMalformed(t *testing.T) {
	var pkTable = protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "a")
	rec := func(inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), inner)
	}
	pk0 := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0)
	data := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte("x"))
	good := kplBody(kplRec(pkTable, rec(kplRec(pk0, data))))
	badMD5 := bytes.Clone(good)
	badMD5[len(badMD5)-1] ^= 1
	cases := []struct {
		name string
		a    Aggregator
		s    Serializer
		data []byte
		want string
	}{
		{"kpl truncated", KPLAggregator{}, nil, append(bytes.Clone(KPLMagic), 1, 2), "truncated data"},
		{"kpl bad md5", KPLAggregator{}, nil, badMD5, "bad MD5"},
		{"kpl bad magic strict", KPLAggregator{Strict: true}, nil, []byte("plain record"), "bad magic"},
		{"kpl bad varint", KPLAggregator{}, nil, kplBody([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), "bad varint"},
		{"kpl truncated field", KPLAggregator{}, nil, kplBody([]byte{0x0a, 0x05, 'a'}), "truncated data"},
		{"kpl wrong wire type", KPLAggregator{}, nil, kplBody([]byte{0x08, 0x01}), "bad field"},
		{"kpl pk index", KPLAggregator{}, nil, kplBody(kplRec(rec(kplRec(pk0, data)))), "partition_key_index 0"},
		{"kpl ehk index", KPLAggregator{}, nil, kplBody(kplRec(pkTable, rec(kplRec(pk0, []byte{0x10, 0x03}, data)))), "explicit_hash_key_index 3"},
		{"kpl missing data", KPLAggregator{}, nil, kplBody(kplRec(pkTable, rec(pk0))), "lacks the required data"},
		{"kpl missing pk index", KPLAggregator{}, nil, kplBody(kplRec(pkTable, rec(data))), "lacks the required partition_key_index"},
		{"netstring wrong length", NetstringAggregator{}, nil, []byte("3:ab,"), "wrong length"},
		{"netstring long length", NetstringAggregator{}, nil, []byte("3:abcd,"), "expected ','"},
		{"netstring missing comma", NetstringAggregator{}, nil, []byte("3:abc"), "missing ','"},
		{"netstring no colon", NetstringAggregator{}, nil, []byte("3;abc,"), "expected ':'"},
		{"netstring no length", NetstringAggregator{}, nil, []byte("3:abc,x"), "expected a decimal length"},
		{"netstring truncated", NetstringAggregator{}, nil, []byte("12"), "truncated"},
		{"list invalid", ListAggregator{}, nil, []byte("[1, 2"), "invalid JSON list"},
		{"list not array", ListAggregator{}, nil, []byte(`{"a": 1}`), "not an array"},
		{"list null", ListAggregator{}, nil, []byte(`null`), "not an array"},
		{"json invalid", nil, JSONSerializer{}, []byte(`{"a": }`), "invalid JSON"},
		{"json trailing", nil, JSONSerializer{}, []byte(`1 2`), "invalid JSON"},
		{"msgpack truncated", nil, MsgpackSerializer{}, []byte{0x81, 0xa4, 't', 'e'}, "truncated"},
		{"msgpack huge array", nil, MsgpackSerializer{}, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "declares"},
		{"msgpack trailing", nil, MsgpackSerializer{}, []byte{0x01, 0x02}, "after the value"},
		{"msgpack never used", nil, MsgpackSerializer{}, []byte{0xc1}, "unknown type byte 0xc1"},
		{"msgpack empty", nil, MsgpackSerializer{}, nil, "empty"},
		{"string bad utf8", nil, StringSerializer{}, []byte("ab\xffc"), "invalid UTF-8 at byte 2"},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			var n int
			if c.a != nil {
				// The malformed input sits between two good ones, which go on.
				okData := map[string][]byte{"kpl": good, "netstring": []byte("1:x,"), "list": []byte(`["x"]`)}
				key := map[string]string{"records.KPLAggregator": "kpl", "records.NetstringAggregator": "netstring", "records.ListAggregator": "list"}[fmt.Sprintf("%T", c.a)]
				var out []Record
				out, err = c.a.Deaggregate(ctx, []Record{{Data: okData[key]}, {Data: c.data}, {Data: okData[key]}})
				n = len(out)
			} else {
				var out []any
				okItem := []byte(`"x"`)
				if c.s == (MsgpackSerializer{}) {
					okItem = []byte{0xa1, 'x'}
				}
				out, err = c.s.Deserialize(ctx, [][]byte{okItem, c.data})
				if c.s == (StringSerializer{}) {
					n = 2
				}
				if out[0] == nil || out[1] != nil {
					t.Fatalf("outputs %#v", out)
				}
				n += 2
			}
			var ie ItemErrors
			if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Index != 1 {
				t.Fatalf("error %v: want one item error at index 1", err)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want ErrMalformed mentioning %q", err, c.want)
			}
			if n != 2 && n != 4 {
				t.Fatalf("%d outputs, want the two good inputs'", n)
			}
		})
	}
}

func TestKPLPassThrough(t *testing.T) {
	in := []Record{{Data: []byte("plain"), PartitionKey: "p", ExplicitHashKey: "7", ShardID: "s", SequenceNumber: "9"}}
	out, err := KPLAggregator{}.Deaggregate(context.Background(), in)
	if err != nil || len(out) != 1 {
		t.Fatal(out, err)
	}
	if o := out[0]; string(o.Data) != "plain" || o.Aggregated || o.PartitionKey != "p" || o.ExplicitHashKey != "7" || o.SequenceNumber != "9" || o.SubSequenceNumber != 0 {
		t.Fatalf("%+v", o)
	}
}

func TestNewlineEmptyRows(t *testing.T) {
	out, err := NewlineAggregator{}.Deaggregate(context.Background(), []Record{{Data: []byte("\n1\n\n2")}, {Data: nil}})
	if err != nil || len(out) != 2 || string(out[0].Data) != "1" || string(out[1].Data) != "2" || out[1].SubSequenceNumber != 1 {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, n := range Names() {
		p, _ := ByName(n)
		if _, err := p.Serializer.Serialize(ctx, []any{"x"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s serialize: %v", n, err)
		}
		if _, err := p.Aggregator.Aggregate(ctx, nil, 10); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s aggregate: %v", n, err)
		}
		if _, err := p.Aggregator.Deaggregate(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s deaggregate: %v", n, err)
		}
		if _, err := p.Serializer.Deserialize(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s deserialize: %v", n, err)
		}
	}
}
