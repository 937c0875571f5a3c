package records

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestMsgpackEncoding checks the encodings Python's msgpack (use_bin_type)
// chooses, which the seed writes.
func TestMsgpackEncoding(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{-1, "ff"}, {5, "05"}, {-33, "d0df"}, {-100, "d09c"}, {200, "ccc8"}, {456, "cd01c8"},
		{70000, "ce00011170"}, {int64(1) << 40, "cf0000010000000000"}, {-(int64(1) << 40), "d3ffffff0000000000"},
		{uint64(1) << 63, "cf8000000000000000"}, {1.5, "cb3ff8000000000000"}, {nil, "c0"}, {true, "c3"}, {false, "c2"},
		{[]byte("ab"), "c4026162"}, {[]any{1, 2}, "920102"}, {"", "a0"},
		{strings.Repeat("x", 31), "bf" + strings.Repeat("78", 31)},
		{strings.Repeat("x", 32), "d920" + strings.Repeat("78", 32)},
		{strings.Repeat("x", 300), "da012c" + strings.Repeat("78", 300)},
		{map[string]any{"b": 1, "a": 2}, "82a16102a16201"},
	}
	for _, c := range cases {
		out, err := MsgpackSerializer{}.Serialize(context.Background(), []any{c.in})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(out[0]); got != c.want {
			t.Errorf("%#v: got %s, want %s", c.in, got, c.want)
		}
	}
}

// TestDeaggregateMetadata checks the metadata every aggregator copies and
// numbers.
func TestDeaggregateMetadata(t *testing.T) {
	arrival := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cases := map[string][]byte{
		"newline": []byte("a\nb\n"), "netstring": []byte("1:a,1:b,"), "list": []byte(`["a", "b"]`),
		"kpl": mustHexF("f3899ac20a01611a0708001a033132331a0808001a047465737444b47432846de9a761c2774e0a3d26e6"),
	}
	for name, data := range cases {
		in := []Record{{Data: []byte("x\n"), PartitionKey: "p0", SequenceNumber: "0"},
			{Data: data, PartitionKey: "p", ExplicitHashKey: "9", ShardID: "shardId-1", SequenceNumber: "77", ArrivalTime: arrival}}
		if name == "list" || name == "netstring" || name == "kpl" {
			in = in[1:]
		}
		out, err := aggregators[name].Deaggregate(context.Background(), in)
		if err != nil {
			t.Fatal(name, err)
		}
		out = out[len(out)-2:]
		for i, r := range out {
			if r.ShardID != "shardId-1" || r.SequenceNumber != "77" || !r.ArrivalTime.Equal(arrival) ||
				r.SubSequenceNumber != int64(i) || !r.Aggregated {
				t.Fatalf("%s record %d: %+v", name, i, r)
			}
			wantPK, wantEHK := "p", "9"
			if name == "kpl" {
				wantPK, wantEHK = "a", ""
			}
			if r.PartitionKey != wantPK || r.ExplicitHashKey != wantEHK {
				t.Fatalf("%s record %d keys %q %q", name, i, r.PartitionKey, r.ExplicitHashKey)
			}
		}
		if name == "list" && (!bytes.Equal(out[0].Data, []byte(`"a"`)) || !bytes.Equal(out[1].Data, []byte(`"b"`))) {
			t.Fatalf("list elements %q %q", out[0].Data, out[1].Data)
		}
	}
}
