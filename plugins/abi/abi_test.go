package abi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func sampleBatch() *Batch {
	return &Batch{
		Op: OpHandle, Deadline: 1234567890, Param: 77,
		Records: []Record{
			{Data: []byte(`{"a":1}`), PartitionKey: []byte("pk-1"), ExplicitHashKey: []byte("42"), SequenceNumber: []byte("4960"), ShardID: []byte("shardId-000000000001"), SubSequence: 3, ArrivalNanos: 99, Ref: 5, Flags: FlagAggregated},
			{},
			{Data: []byte{0, 1, 2}},
		},
		Results: []Result{{Index: 0, Status: StatusSkip, Message: []byte("filtered")}, {Index: 2, Status: StatusFail}},
	}
}

func norm(b *Batch) *Batch {
	for i := range b.Records {
		r := &b.Records[i]
		for _, f := range []*[]byte{&r.Data, &r.PartitionKey, &r.ExplicitHashKey, &r.SequenceNumber, &r.ShardID} {
			if len(*f) == 0 {
				*f = nil
			}
		}
	}
	for i := range b.Results {
		if len(b.Results[i].Message) == 0 {
			b.Results[i].Message = nil
		}
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	in := sampleBatch()
	buf, err := in.Append([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("prefix")) || len(buf) != 6+in.Size() {
		t.Fatalf("append kept %q, len %d want %d", buf[:6], len(buf), 6+in.Size())
	}
	var out Batch
	if err := Decode(buf[6:], &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(norm(in), norm(&out)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, *in)
	}
	dst := make([]byte, in.Size())
	if err := in.EncodeTo(dst); err != nil || !bytes.Equal(dst, buf[6:]) {
		t.Fatalf("EncodeTo differs from Append (err %v)", err)
	}
	if err := in.EncodeTo(dst[1:]); err == nil {
		t.Fatal("EncodeTo accepted a short buffer")
	}
}

func TestLayout(t *testing.T) {
	b := &Batch{Op: OpSerialize, Records: []Record{{Data: []byte("xy")}}}
	buf, _ := b.Append(nil)
	le := binary.LittleEndian
	want := []struct {
		at  int
		got uint64
		v   uint64
	}{
		{0, uint64(le.Uint32(buf)), uint64(Magic)},
		{4, uint64(le.Uint16(buf[4:])), 1},
		{6, uint64(le.Uint16(buf[6:])), uint64(OpSerialize)},
		{8, uint64(le.Uint32(buf[8:])), 1},
		{32, uint64(le.Uint32(buf[32:])), 96},
		{36, uint64(le.Uint32(buf[36:])), 2},
	}
	for _, w := range want {
		if w.got != w.v {
			t.Errorf("byte %d: %d, want %d", w.at, w.got, w.v)
		}
	}
	if string(buf[:4]) != "SWB1" || string(buf[96:]) != "xy" || len(buf) != 98 {
		t.Fatalf("layout %q", buf)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := sampleBatch().Append(nil)
	le := binary.LittleEndian
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		buf  []byte
		want string
	}{
		{"short", good[:10], "shorter than"},
		{"magic", mut(func(b []byte) { b[0] = 'X' }), "magic"},
		{"version", mut(func(b []byte) { le.PutUint16(b[4:], 2) }), "version 2"},
		{"op", mut(func(b []byte) { le.PutUint16(b[6:], 9) }), "unknown op"},
		{"count", mut(func(b []byte) { le.PutUint32(b[8:], 1<<30) }), "tables"},
		{"offset past end", mut(func(b []byte) { le.PutUint32(b[32:], uint32(len(b))) }), "outside the data area"},
		{"offset into tables", mut(func(b []byte) { le.PutUint32(b[32:], 0) }), "outside the data area"},
		{"length overflow", mut(func(b []byte) { le.PutUint32(b[36:], 0xFFFFFFFF) }), "outside the data area"},
		{"status", mut(func(b []byte) { le.PutUint32(b[HeaderSize+3*RecordSize+4:], 7) }), "unknown status"},
		{"reserved", mut(func(b []byte) { b[28] = 1 }), "reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Batch
			err := Decode(c.buf, &b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestCheckOutput(t *testing.T) {
	in3 := func(op Op) *Batch { return &Batch{Op: op, Records: make([]Record, 3)} }
	cases := []struct {
		name string
		in   *Batch
		out  *Batch
		want string // "" = valid
	}{
		{"serialize ok", in3(OpSerialize), &Batch{Op: OpSerialize, Records: make([]Record, 3), Results: []Result{{Index: 1, Status: StatusFail}}}, ""},
		{"serialize count", in3(OpSerialize), &Batch{Op: OpSerialize, Records: make([]Record, 2)}, "returned 2 records for 3"},
		{"op mismatch", in3(OpSerialize), &Batch{Op: OpHandle}, "output op"},
		{"result range", in3(OpHandle), &Batch{Op: OpHandle, Results: []Result{{Index: 3}}}, "item 3 of a 3-item"},
		{"result order", in3(OpHandle), &Batch{Op: OpHandle, Results: []Result{{Index: 1}, {Index: 1}}}, "strictly increase"},
		{"skip only for handle", in3(OpDeserialize), &Batch{Op: OpDeserialize, Records: make([]Record, 3), Results: []Result{{Index: 0, Status: StatusSkip}}}, "may only report fail"},
		{"aggregate ok", in3(OpAggregate), &Batch{Op: OpAggregate, Records: []Record{{Ref: 1}, {Ref: 1}}, Results: []Result{{Index: 2, Status: StatusFail}}}, ""},
		{"aggregate short", in3(OpAggregate), &Batch{Op: OpAggregate, Records: []Record{{Ref: 2}}}, "hold 2 inputs and 0 failed"},
		{"aggregate empty output", in3(OpAggregate), &Batch{Op: OpAggregate, Records: []Record{{Ref: 3}, {Ref: 0}}}, "holds no inputs"},
		{"aggregate over", in3(OpAggregate), &Batch{Op: OpAggregate, Records: []Record{{Ref: 4}}}, "more than"},
		{"deaggregate ok", in3(OpDeaggregate), &Batch{Op: OpDeaggregate, Records: []Record{{Ref: 0}, {Ref: 0}, {Ref: 2}}}, ""},
		{"deaggregate order", in3(OpDeaggregate), &Batch{Op: OpDeaggregate, Records: []Record{{Ref: 2}, {Ref: 1}}}, "keep input order"},
		{"deaggregate range", in3(OpDeaggregate), &Batch{Op: OpDeaggregate, Records: []Record{{Ref: 3}}}, "names input 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckOutput(c.in, c.out)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestParseDescription(t *testing.T) {
	d, err := ParseDescription([]byte(`{"name":"x","version":"1.0","abi":1,"kinds":["serializer","handler"],"config_schema":{"type":"object"}}`))
	if err != nil || !d.Has(KindHandler) || d.Has(KindAggregator) {
		t.Fatalf("%+v %v", d, err)
	}
	for in, want := range map[string]string{
		`nope`:                          "invalid JSON",
		`{"abi":1,"kinds":["handler"]}`: "name is empty",
		`{"name":"x","abi":2,"kinds":["handler"]}`:                        "declares abi 2",
		`{"name":"x","abi":1}`:                                            "no kinds",
		`{"name":"x","abi":1,"kinds":["teapot"]}`:                         `unknown kind "teapot"`,
		`{"name":"x","abi":1,"kinds":["handler"],"item_encoding":"cbor"}`: "item encoding",
	} {
		if _, err := ParseDescription([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

func TestPack(t *testing.T) {
	p, l := Unpack(Pack(0xDEADBEEF, 17))
	if p != 0xDEADBEEF || l != 17 {
		t.Fatalf("%x %d", p, l)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := sampleBatch().Append(nil)
	f.Add(good)
	f.Add(good[:HeaderSize])
	empty, _ := (&Batch{Op: OpAggregate}).Append(nil)
	f.Add(empty)
	f.Fuzz(func(t *testing.T, buf []byte) {
		var b Batch
		if err := Decode(buf, &b); err != nil {
			return
		}
		// A decoded batch re-encodes to something that decodes to the same.
		re, err := b.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var b2 Batch
		if err := Decode(re, &b2); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(norm(&b), norm(&b2)) {
			t.Fatalf("re-decode differs")
		}
		_ = CheckOutput(&b, &b2)
	})
}

func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(`{"name":"x","version":"1","abi":1,"kinds":["handler"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescription(b)
		if err == nil && (d.Name == "" || len(d.Kinds) == 0) {
			t.Fatalf("accepted %q", b)
		}
	})
}

func ExampleDecode() {
	in := Batch{Op: OpHandle, Records: []Record{{Data: []byte(`{"n":1}`), PartitionKey: []byte("k")}}}
	buf, _ := in.Append(nil)
	var out Batch
	if err := Decode(buf, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(buf), out.Op, string(out.Records[0].Data), string(out.Records[0].PartitionKey))
	// Output: 104 handle {"n":1} k
}
