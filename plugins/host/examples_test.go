package host_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

type vrec struct {
	PartitionKey    string  `json:"partition_key"`
	ExplicitHashKey *string `json:"explicit_hash_key"`
	DataB64         string  `json:"data_b64"`
}

func (v vrec) user(t testing.TB) records.UserRecord {
	d, err := base64.StdEncoding.DecodeString(v.DataB64)
	if err != nil {
		t.Fatal(err)
	}
	u := records.UserRecord{PartitionKey: v.PartitionKey, Data: d}
	if v.ExplicitHashKey != nil {
		u.ExplicitHashKey = *v.ExplicitHashKey
	}
	return u
}

type kplCase struct {
	Name        string `json:"name"`
	MaxSize     int    `json:"max_size"`
	UserRecords []vrec `json:"user_records"`
	Aggregated  []vrec `json:"aggregated"`
}

func kplVectors(t testing.TB) []kplCase {
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "testdata", "kpl", "reference_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []kplCase }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// TestKPLReferenceVectors: the WASM KPL aggregator produces the reference
// aggregator's exact bytes, and the WASM deaggregator decodes them exactly.
func TestKPLReferenceVectors(t *testing.T) {
	p := load(t, build(t, "plugins/examples/kpl"))
	agg, err := p.Aggregator()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range kplVectors(t) {
		t.Run(c.Name, func(t *testing.T) {
			var in []records.UserRecord
			for _, u := range c.UserRecords {
				in = append(in, u.user(t))
			}
			out, err := agg.Aggregate(ctx, in, c.MaxSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(c.Aggregated) {
				t.Fatalf("%d aggregates, want %d", len(out), len(c.Aggregated))
			}
			total := 0
			var kin []records.Record
			arrival := time.Unix(1700000000, 0)
			for i, a := range c.Aggregated {
				w := a.user(t)
				if out[i].PartitionKey != w.PartitionKey || out[i].ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(out[i].Data, w.Data) {
					t.Fatalf("aggregate %d differs from the reference: %d bytes vs %d", i, len(out[i].Data), len(w.Data))
				}
				total += out[i].Count
				kin = append(kin, records.Record{Data: w.Data, PartitionKey: w.PartitionKey, ShardID: "shardId-000000000000", SequenceNumber: "49" + string(rune('0'+i)), ArrivalTime: arrival})
			}
			if total != len(in) {
				t.Fatalf("counts cover %d records, want %d", total, len(in))
			}
			back, err := agg.Deaggregate(ctx, kin)
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(in) {
				t.Fatalf("deaggregated %d, want %d", len(back), len(in))
			}
			sub := map[string]int64{}
			for i, r := range back {
				if r.PartitionKey != in[i].PartitionKey || r.ExplicitHashKey != in[i].ExplicitHashKey || !bytes.Equal(r.Data, in[i].Data) {
					t.Fatalf("record %d: got %q/%q want %q/%q", i, r.PartitionKey, r.Data, in[i].PartitionKey, in[i].Data)
				}
				if !r.Aggregated || r.ShardID != "shardId-000000000000" || !r.ArrivalTime.Equal(arrival) || r.SubSequenceNumber != sub[r.SequenceNumber] {
					t.Fatalf("record %d metadata: %+v", i, r)
				}
				sub[r.SequenceNumber]++
			}
		})
	}
	calls := p.Stats().Calls.Load()
	if n := agg.SizeAlone(records.UserRecord{PartitionKey: "a", Data: []byte("123")}); n != 4+3+9+16+1 {
		t.Fatalf("SizeAlone = %d", n)
	}
	// The same lengths again: answered without calling the guest.
	if n := agg.SizeAlone(records.UserRecord{PartitionKey: "b", Data: []byte("456")}); n != 4+3+9+16+1 {
		t.Fatalf("SizeAlone again = %d", n)
	}
	if got := p.Stats().Calls.Load() - calls; got != 1 {
		t.Fatalf("two SizeAlone calls with the same lengths made %d guest calls, want 1", got)
	}
}

func TestKPLPassThroughAndCorrupt(t *testing.T) {
	p := load(t, build(t, "plugins/examples/kpl"))
	agg, _ := p.Aggregator()
	ctx := context.Background()
	good, err := agg.Aggregate(ctx, []records.UserRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: []byte("y")}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good[0].Data)
	corrupt[len(corrupt)-1] ^= 0xff
	out, err := agg.Deaggregate(ctx, []records.Record{
		{Data: []byte("plain"), PartitionKey: "p", SequenceNumber: "1"},
		{Data: corrupt, PartitionKey: "a", SequenceNumber: "2"},
		{Data: good[0].Data, PartitionKey: "a", SequenceNumber: "3"},
	})
	items, batch := records.SplitErrors(err)
	if batch != nil || len(items) != 1 || items[0].Index != 1 || !strings.Contains(items[0].Error(), "MD5") {
		t.Fatalf("errors: %v", err)
	}
	if len(out) != 3 || string(out[0].Data) != "plain" || out[0].Aggregated || string(out[2].Data) != "y" || out[2].SubSequenceNumber != 1 || out[2].SequenceNumber != "3" {
		t.Fatalf("out %+v", out)
	}
	// A record too large even alone is an item error; the others are packed.
	res, err := agg.Aggregate(ctx, []records.UserRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "a", Data: make([]byte, 200)}, {PartitionKey: "a", Data: []byte("z")}}, 100)
	items, batch = records.SplitErrors(err)
	if batch != nil || len(items) != 1 || items[0].Index != 1 || len(res) != 1 || res[0].Count != 2 {
		t.Fatalf("oversize: %v %+v", err, res)
	}
}

// TestMsgpackGolden: the WASM msgpack plugin is byte-compatible with the
// seed's MsgpackProcessor.
func TestMsgpackGolden(t *testing.T) {
	p := load(t, build(t, "plugins/examples/msgpack"))
	ser, err := p.Serializer()
	if err != nil {
		t.Fatal(err)
	}
	agg, err := p.Aggregator()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data, err := ser.Serialize(ctx, []any{json.RawMessage(`{"test":123}`), map[string]any{"test": 456}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := agg.Aggregate(ctx, []records.UserRecord{{PartitionKey: "k", Data: data[0]}, {PartitionKey: "k", Data: data[1]}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := "7:\x81\xa4test{,9:\x81\xa4test\xcd\x01\xc8,"; len(out) != 1 || string(out[0].Data) != want || out[0].Count != 2 {
		t.Fatalf("got %+v want %q", out, want)
	}
	recs, err := agg.Deaggregate(ctx, []records.Record{{Data: out[0].Data, PartitionKey: "k"}, {Data: []byte("3:12,"), PartitionKey: "k"}})
	items, batch := records.SplitErrors(err)
	if batch != nil || len(items) != 1 || items[0].Index != 1 || len(recs) != 2 {
		t.Fatalf("deaggregate: %v %d", err, len(recs))
	}
	items2, err := ser.Deserialize(ctx, [][]byte{recs[0].Data, recs[1].Data, []byte{0xc1}})
	ie, batch := records.SplitErrors(err)
	if batch != nil || len(ie) != 1 || ie[0].Index != 2 {
		t.Fatalf("deserialize errors: %v", err)
	}
	if b, _ := json.Marshal(items2[:2]); string(b) != `[{"test":123},{"test":456}]` {
		t.Fatalf("deserialized %s", b)
	}
	// Unserializable items are item errors; the rest go through.
	got, err := ser.Serialize(ctx, []any{"ok", func() {}, 1.5})
	ie, batch = records.SplitErrors(err)
	if batch != nil || len(ie) != 1 || ie[0].Index != 1 || string(got[0]) != "\xa2ok" || got[1] != nil || len(got[2]) != 9 {
		t.Fatalf("serialize: %v %q", err, got)
	}
}

func TestEnrichHandler(t *testing.T) {
	p := load(t, build(t, "plugins/examples/enrich"), host.WithConfig([]byte(`{"add":{"env":"test"},"route_field":"level","route_values":["error"]}`)))
	h, err := p.Handler()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Serializer(); !errors.Is(err, host.ErrWrongKind) || !strings.Contains(err.Error(), `"enrich"`) {
		t.Fatalf("wrong kind: %v", err)
	}
	arr := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	batch := []records.Record{
		{Data: []byte(`{"level":"error","msg":"disk full"}`), PartitionKey: "host-1", ShardID: "shardId-000000000001", SequenceNumber: "100", ArrivalTime: arr},
		{Data: []byte(`{"type":"heartbeat"}`), PartitionKey: "host-1", SequenceNumber: "101"},
		{Data: []byte(`{"level":"info"}`), PartitionKey: "host-2", SequenceNumber: "102"},
		{Data: []byte(`not json`), PartitionKey: "host-3", SequenceNumber: "103"},
	}
	out, err := h.Handle(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []records.Status{records.StatusOK, records.StatusSkip, records.StatusOK, records.StatusFail}
	for i, r := range out.Results {
		if r.Status != want[i] {
			t.Errorf("record %d: %v %q, want %v", i, r.Status, r.Message, want[i])
		}
	}
	if !strings.Contains(out.Results[3].Message, "invalid JSON") {
		t.Errorf("fail message %q", out.Results[3].Message)
	}
	if len(out.Emit) != 1 || out.Emit[0].PartitionKey != "host-1" ||
		string(out.Emit[0].Data) != `{"level":"error","msg":"disk full","_shard":"shardId-000000000001","_sequence":"100","_subsequence":0,"_partition_key":"host-1","_arrival":"2026-01-02T03:04:05Z","env":"test"}` {
		t.Fatalf("emit %+v", out.Emit)
	}
}

func TestRustUpper(t *testing.T) {
	path, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		t.Fatalf("the Rust example must build (CI installs the toolchain): %v", err)
	}
	logs := &syncBuffer{}
	p := load(t, path, host.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	h, err := p.Handler()
	if err != nil {
		t.Fatal(err)
	}
	// init called the host's shardwork_v1.log import.
	if !strings.Contains(logs.String(), `msg="upper plugin ready" plugin=upper`) {
		t.Fatalf("host log import not used: %s", logs.String())
	}
	out, err := h.Handle(context.Background(), []records.Record{{Data: []byte("héllo"), PartitionKey: "k1"}, {PartitionKey: "k2"}, {Data: []byte{0xff}, PartitionKey: "k3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Emit) != 1 || string(out.Emit[0].Data) != "HéLLO" || out.Emit[0].PartitionKey != "k1" {
		t.Fatalf("emit %+v", out.Emit)
	}
	if out.Results[0].Status != records.StatusOK || out.Results[1].Status != records.StatusSkip || out.Results[2].Status != records.StatusFail || out.Results[2].Message != "record is not UTF-8" {
		t.Fatalf("results %+v", out.Results)
	}
	if fi, _ := os.Stat(path); fi.Size() > 200<<10 {
		t.Errorf("rust plugin is %d bytes", fi.Size())
	}
}
