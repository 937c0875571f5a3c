package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shardwork/shardwork/plugins/abi/guest"
)

func TestGoldenVectors(t *testing.T) {
	var agg []byte
	for _, item := range []string{`{"test":123}`, `{"test":456}`} {
		mp, err := jsonToMsgpack(nil, []byte(item))
		if err != nil {
			t.Fatal(err)
		}
		agg = appendNetstring(agg, mp)
	}
	if want := "7:\x81\xa4test{,9:\x81\xa4test\xcd\x01\xc8,"; string(agg) != want {
		t.Fatalf("got %q want %q", agg, want)
	}
	for in, want := range map[string]string{`"123"`: "4:\xa3123,", `""`: "1:\xa0,"} {
		mp, _ := jsonToMsgpack(nil, []byte(in))
		if got := appendNetstring(nil, mp); string(got) != want {
			t.Errorf("%s: %q want %q", in, got, want)
		}
	}
	var items []string
	if err := splitNetstrings([]byte("3:123,4:test,0:,6:h\xc3\xa9llo,"), func(b []byte) { items = append(items, string(b)) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(items, "|") != "123|test||héllo" {
		t.Fatalf("%q", items)
	}
}

func TestNetstringRejects(t *testing.T) {
	for _, in := range []string{"", "3:12,", "3:1234", "3:123", "x:1,", "03:123,", "3;123,", "99999999999:a,", "3:123,4"} {
		if err := splitNetstrings([]byte(in), func([]byte) {}); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestSeedRecords checks byte-compatibility with records async-kinesis wrote
// with its MsgpackProcessor: decoding gives the items, and encoding the
// items (in their JSON key order) gives the same bytes.
func TestSeedRecords(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "seed", "async_kinesis_records.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Processor string            `json:"processor"`
			Items     []json.RawMessage `json:"items"`
			Records   []struct {
				PartitionKey string `json:"partition_key"`
				DataB64      string `json:"data_b64"`
			} `json:"kinesis_records"`
		}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range f.Cases {
		if c.Processor != "MsgpackProcessor" {
			continue
		}
		found = true
		var want []byte
		var decoded []json.RawMessage
		for _, r := range c.Records {
			d, _ := base64.StdEncoding.DecodeString(r.DataB64)
			want = append(want, d...)
			if err := splitNetstrings(d, func(item []byte) {
				j, err := msgpackToJSON(nil, item)
				if err != nil {
					t.Fatal(err)
				}
				decoded = append(decoded, j)
			}); err != nil {
				t.Fatal(err)
			}
		}
		if len(decoded) != len(c.Items) {
			t.Fatalf("decoded %d items, want %d", len(decoded), len(c.Items))
		}
		var got []byte
		for i, it := range c.Items {
			var a, b any
			json.Unmarshal(it, &a)
			json.Unmarshal(decoded[i], &b)
			if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
				t.Fatalf("item %d: decoded %s want %s", i, jb, ja)
			}
			mp, err := jsonToMsgpack(nil, it)
			if err != nil {
				t.Fatal(err)
			}
			got = appendNetstring(got, mp)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded %d bytes differ from the seed's %d", len(got), len(want))
		}
	}
	if !found {
		t.Fatal("no MsgpackProcessor case in the seed records")
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestTranscodeRoundTrip(t *testing.T) {
	for _, in := range []string{`null`, `true`, `[1,-1,-33,-129,-40000,-3000000000,255,65535,70000,5000000000,18446744073709551615]`,
		`{"a":{"b":[1.5,"x\n\"y\u00e9\ud83d\ude00"]},"":[]}`, `1e300`, `"` + strings.Repeat("z", 300) + `"`, `[` + strings.Repeat(`0,`, 20) + `0]`} {
		mp, err := jsonToMsgpack(nil, []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		back, err := msgpackToJSON(nil, mp)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(back, &b); err != nil {
			t.Fatalf("%s -> %s: %v", in, back, err)
		}
		if mustJSON(a) != mustJSON(b) {
			t.Fatalf("%s -> %s", in, back)
		}
	}
	for _, bad := range []string{``, `{`, `[1,]`, `01`, `"\x01"`, `tru`, `1 2`, `18446744073709551616`} {
		if _, err := jsonToMsgpack(nil, []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestInvokeNative(t *testing.T) {
	var d struct{ Kinds []string }
	if err := json.Unmarshal(guest.DescribeJSON(), &d); err != nil || len(d.Kinds) != 2 {
		t.Fatalf("%s %v", guest.DescribeJSON(), err)
	}
}

func FuzzMsgpackToJSON(f *testing.F) {
	mp, _ := jsonToMsgpack(nil, []byte(`{"a":[1,2.5,"x",null,true,{"b":-5}]}`))
	f.Add(mp)
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := msgpackToJSON(nil, b)
		if err != nil {
			return
		}
		if !json.Valid(j) {
			t.Fatalf("invalid JSON %q from %x", j, b)
		}
	})
}

func FuzzJSONToMsgpack(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x\u00e9",null,true,{"b":-5}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		mp, err := jsonToMsgpack(nil, b)
		if err != nil {
			return
		}
		if _, err := msgpackToJSON(nil, mp); err != nil {
			t.Fatalf("msgpack from %q does not decode: %v", b, err)
		}
	})
}

func FuzzSplitNetstrings(f *testing.F) {
	f.Add([]byte("3:123,4:test,"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var re []byte
		if err := splitNetstrings(b, func(item []byte) { re = appendNetstring(re, item) }); err != nil {
			return
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("%q re-encodes as %q", b, re)
		}
	})
}

func BenchmarkSerializeNative(b *testing.B) {
	items := make([][]byte, 500)
	for i := range items {
		items[i] = []byte(`{"id":` + strconv.Itoa(i) + `,"user":"u1","score":0.672387,"tags":["b","c"],"text":"é✓é✓é✓é✓","nested":{"k":760360219,"n":null,"t":true}}`)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range items {
			if _, err := jsonToMsgpack(nil, it); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/item")
}
