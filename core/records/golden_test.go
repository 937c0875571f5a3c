package records

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// encode serializes items and aggregates them under one partition key.
func encode(t testing.TB, p Processor, pk string, maxSize int, items ...any) []Aggregated {
	t.Helper()
	ctx := context.Background()
	data, err := p.Serializer.Serialize(ctx, items)
	if err != nil {
		t.Fatalf("%s: serialize: %v", p.Name, err)
	}
	in := make([]UserRecord, len(data))
	for i, d := range data {
		in[i] = UserRecord{PartitionKey: pk, Data: d}
	}
	out, err := p.Aggregator.Aggregate(ctx, in, maxSize)
	if err != nil {
		t.Fatalf("%s: aggregate: %v", p.Name, err)
	}
	return out
}

// decode deaggregates and deserializes Kinesis records.
func decode(t testing.TB, p Processor, recs ...Record) []any {
	t.Helper()
	ctx := context.Background()
	users, err := p.Aggregator.Deaggregate(ctx, recs)
	if err != nil {
		t.Fatalf("%s: deaggregate: %v", p.Name, err)
	}
	data := make([][]byte, len(users))
	for i, u := range users {
		data[i] = u.Data
	}
	items, err := p.Serializer.Deserialize(ctx, data)
	if err != nil {
		t.Fatalf("%s: deserialize: %v", p.Name, err)
	}
	return items
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenVectors checks every golden vector of the seed's wire formats,
// byte for byte, in both directions.
func TestGoldenVectors(t *testing.T) {
	m := func(v int) map[string]any { return map[string]any{"test": v} }
	cases := []struct {
		name  string
		p     Processor
		items []any
		want  []byte
		back  []any // decoded items, when they differ from items
	}{
		{"newline string", Processor{Name: "newline-string", Serializer: StringSerializer{}, Aggregator: NewlineAggregator{}},
			[]any{"123", "test"}, []byte("123\ntest\n"), nil},
		{"json lines", JSONLinesProcessor(), []any{m(123), m(456)}, []byte("{\"test\": 123}\n{\"test\": 456}\n"),
			[]any{map[string]any{"test": 123.0}, map[string]any{"test": 456.0}}},
		{"netstring", Processor{Name: "netstring-string", Serializer: StringSerializer{}, Aggregator: NetstringAggregator{}},
			[]any{"123", "test"}, []byte("3:123,4:test,"), nil},
		{"netstring utf8", Processor{Name: "netstring-string", Serializer: StringSerializer{}, Aggregator: NetstringAggregator{}},
			[]any{"héllo"}, []byte("6:h\xc3\xa9llo,"), nil},
		{"netstring empty", Processor{Name: "netstring-string", Serializer: StringSerializer{}, Aggregator: NetstringAggregator{}},
			[]any{""}, []byte("0:,"), nil},
		{"msgpack netstring", MsgpackProcessor(), []any{m(123), m(456)}, []byte("7:\x81\xa4test{,9:\x81\xa4test\xcd\x01\xc8,"),
			[]any{map[string]any{"test": int64(123)}, map[string]any{"test": int64(456)}}},
		{"json list", JSONListProcessor(), []any{123, "test"}, []byte(`[123, "test"]`), []any{123.0, "test"}},
		{"kpl", KPLStringProcessor(), []any{"123", "test"},
			mustHex(t, "f3899ac2 0a0161 1a0708001a03313233 1a0808001a0474657374 44b47432846de9a761c2774e0a3d26e6"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := encode(t, c.p, "a", MaxRecordSize, c.items...)
			if len(out) != 1 {
				t.Fatalf("got %d records, want 1", len(out))
			}
			if !bytes.Equal(out[0].Data, c.want) {
				t.Fatalf("encoded\n got %q\nwant %q", out[0].Data, c.want)
			}
			if out[0].Count != len(c.items) || out[0].PartitionKey != "a" {
				t.Fatalf("count %d pk %q", out[0].Count, out[0].PartitionKey)
			}
			want := c.back
			if want == nil {
				want = c.items
			}
			got := decode(t, c.p, Record{Data: c.want, PartitionKey: "a"})
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %#v, want %#v", got, want)
			}
		})
	}
}

// TestJSONPythonFormat checks the JSON encoder's Python-compatible output.
func TestJSONPythonFormat(t *testing.T) {
	type s struct {
		B string `json:"b"`
		A []int  `json:"a"`
	}
	cases := []struct {
		in   any
		want string
	}{
		{map[string]any{"b": 1, "a": []any{1, "x", nil, true}}, `{"a": [1, "x", null, true], "b": 1}`},
		{s{B: "é✓日本 <&> \"q\" a:b, c", A: []int{1, 2}}, `{"b": "\u00e9\u2713\u65e5\u672c <&> \"q\" a:b, c", "a": [1, 2]}`},
		{"😀", `"\ud83d\ude00"`},
		{0.672387, `0.672387`},
		{"line\nbreak\\", `"line\nbreak\\"`},
	}
	for _, c := range cases {
		out, err := JSONSerializer{}.Serialize(context.Background(), []any{c.in})
		if err != nil {
			t.Fatal(err)
		}
		if string(out[0]) != c.want {
			t.Errorf("%#v:\n got %s\nwant %s", c.in, out[0], c.want)
		}
	}
}

type seedFile struct {
	Cases []struct {
		Processor string            `json:"processor"`
		Items     []json.RawMessage `json:"items"`
		Records   []struct {
			PartitionKey string `json:"partition_key"`
			DataB64      string `json:"data_b64"`
		} `json:"kinesis_records"`
	} `json:"cases"`
}

func readTestdata(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatalf("reference data missing: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// normalize maps decoded numbers to float64 so that msgpack's integers
// compare equal to JSON's numbers.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

var seedProcessors = map[string]string{
	"StringProcessor": NameString, "JsonProcessor": NameJSON, "JsonLineProcessor": NameJSONLines,
	"JsonListProcessor": NameJSONList, "MsgpackProcessor": NameMsgpack,
	"KPLJsonProcessor": NameKPLJSON, "KPLStringProcessor": NameKPLString,
}

// TestSeedRecords decodes Kinesis records written by async-kinesis with each
// of its processors and checks that they give exactly the items put.
func TestSeedRecords(t *testing.T) {
	var f seedFile
	readTestdata(t, "seed/async_kinesis_records.json", &f)
	seen := map[string]bool{}
	for _, c := range f.Cases {
		t.Run(c.Processor, func(t *testing.T) {
			name, ok := seedProcessors[c.Processor]
			if !ok {
				t.Fatalf("unknown seed processor %q", c.Processor)
			}
			seen[name] = true
			p, err := ByName(name)
			if err != nil {
				t.Fatal(err)
			}
			recs := make([]Record, len(c.Records))
			for i, r := range c.Records {
				d, err := base64.StdEncoding.DecodeString(r.DataB64)
				if err != nil {
					t.Fatal(err)
				}
				recs[i] = Record{Data: d, PartitionKey: r.PartitionKey, ShardID: "shardId-000000000000", SequenceNumber: "1"}
			}
			got := decode(t, p, recs...)
			if len(got) != len(c.Items) {
				t.Fatalf("decoded %d items, want %d", len(got), len(c.Items))
			}
			for i, raw := range c.Items {
				var want any
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(normalize(got[i]), want) {
					t.Fatalf("item %d:\n got %#v\nwant %#v", i, got[i], want)
				}
			}
			// Our own encoding of the items decodes to the same items.
			items := make([]any, len(got))
			copy(items, got)
			out := encode(t, p, "pk", MaxRecordSize, items...)
			var back []Record
			for _, a := range out {
				back = append(back, Record{Data: a.Data, PartitionKey: a.PartitionKey})
			}
			if again := decode(t, p, back...); !reflect.DeepEqual(again, got) {
				t.Fatalf("re-encoded items decode differently")
			}
		})
	}
	if len(seen) != len(Names()) {
		t.Fatalf("seed data covers %d processors, want %d", len(seen), len(Names()))
	}
}

// TestSeedRecordsJSONBytes checks that the JSON encoder reproduces the
// seed's bytes for the seed's items where Go can represent them exactly.
func TestSeedRecordsJSONBytes(t *testing.T) {
	var f seedFile
	readTestdata(t, "seed/async_kinesis_records.json", &f)
	for _, c := range f.Cases {
		if c.Processor != "JsonProcessor" {
			continue
		}
		same := 0
		for i, raw := range c.Items {
			// Decode keeping key order: the seed's items are Python dicts.
			want, _ := base64.StdEncoding.DecodeString(c.Records[i].DataB64)
			var v orderedJSON
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			out, err := JSONSerializer{}.Serialize(context.Background(), []any{v})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(out[0], want) {
				same++
			} else {
				t.Errorf("item %d:\n got %s\nwant %s", i, out[0], want)
			}
		}
		if same != len(c.Items) {
			t.Fatalf("%d of %d items byte-identical", same, len(c.Items))
		}
	}
}

// orderedJSON keeps a JSON value's bytes as they are (object key order
// included) so the serializer's formatting alone is tested.
type orderedJSON struct{ raw json.RawMessage }

func (o *orderedJSON) UnmarshalJSON(b []byte) error { o.raw = append(o.raw[:0], b...); return nil }
func (o orderedJSON) MarshalJSON() ([]byte, error)  { return o.raw, nil }

// TestSeedRecordsReencoded re-encodes the seed's items (object key order
// kept) with the processors and checks that the Kinesis records are
// byte-identical to the seed's.
func TestSeedRecordsReencoded(t *testing.T) {
	var f seedFile
	readTestdata(t, "seed/async_kinesis_records.json", &f)
	ctx := context.Background()
	for _, c := range f.Cases {
		t.Run(c.Processor, func(t *testing.T) {
			p, _ := ByName(seedProcessors[c.Processor])
			items := make([]any, len(c.Items))
			for i, raw := range c.Items {
				if p.Serializer == (StringSerializer{}) {
					var s string
					if err := json.Unmarshal(raw, &s); err != nil {
						t.Fatal(err)
					}
					items[i] = s
				} else {
					items[i] = orderedJSON{raw: raw}
				}
			}
			data, err := p.Serializer.Serialize(ctx, items)
			if err != nil {
				t.Fatal(err)
			}
			// The user records' partition keys, as the seed wrote them.
			var recs []Record
			for _, r := range c.Records {
				recs = append(recs, Record{Data: b64(t, r.DataB64), PartitionKey: r.PartitionKey})
			}
			users, err := p.Aggregator.Deaggregate(ctx, recs)
			if err != nil {
				t.Fatal(err)
			}
			in := make([]UserRecord, len(data))
			for i := range data {
				in[i] = UserRecord{PartitionKey: users[i].PartitionKey, Data: data[i]}
			}
			out, err := p.Aggregator.Aggregate(ctx, in, 1024*1000) // the seed's default max size
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(c.Records) {
				t.Fatalf("%d records, the seed wrote %d", len(out), len(c.Records))
			}
			for i, o := range out {
				if want := b64(t, c.Records[i].DataB64); !bytes.Equal(o.Data, want) {
					n := 0
					for n < len(want) && n < len(o.Data) && want[n] == o.Data[n] {
						n++
					}
					t.Fatalf("record %d differs at byte %d (len %d, want %d): %q vs %q", i, n, len(o.Data), len(want), o.Data[n:min(n+40, len(o.Data))], want[n:min(n+40, len(want))])
				}
			}
		})
	}
}
