package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/abi"
	"github.com/shardwork/shardwork/plugins/host"
)

// Result is the outcome of one check.
type Result struct {
	Name   string
	Passed bool
	Detail string // why it failed, or a measured fact when it passed
}

// Report lists every check run on a plugin.
type Report struct {
	Path        string
	Description abi.Description
	Results     []Result
}

// Passed reports whether every check passed.
func (r *Report) Passed() bool {
	for _, c := range r.Results {
		if !c.Passed {
			return false
		}
	}
	return len(r.Results) > 0
}

// String renders the report, one line per check.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s %s, kinds %v)\n", r.Path, r.Description.Name, r.Description.Version, r.Description.Kinds)
	for _, c := range r.Results {
		mark := "ok  "
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s", mark, c.Name)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ErrNonConformant is returned (wrapped) when any check fails.
var ErrNonConformant = errors.New("plugin does not conform to ABI v1")

// Check loads the plugin at wasmPath with the host's default sandbox (no
// retry or isolation, so a broken plugin is reported exactly) and checks it
// against ABI v1: load-time validation (file, imports, exports and their
// types, abi_version, describe, init), then for each declared kind round
// trips over sample batches, the empty batch, size limits and the bounds of
// every offset the guest returns (the host decodes every output with bounds
// checks). opts are passed to host.Load after the kit's own.
func Check(ctx context.Context, wasmPath string, opts ...host.Option) (Report, error) {
	rep := Report{Path: wasmPath}
	add := func(name string, err error, detail string) bool {
		r := Result{Name: name, Passed: err == nil, Detail: detail}
		if err != nil {
			r.Detail = err.Error()
		}
		rep.Results = append(rep.Results, r)
		return err == nil
	}
	fi, err := os.Stat(wasmPath)
	if !add("file exists", err, "") {
		return rep, fmt.Errorf("%w: %s", ErrNonConformant, err)
	}
	start := time.Now()
	p, err := host.Load(ctx, wasmPath, append([]host.Option{host.WithoutIsolation(), host.WithCallTimeout(10 * time.Second), host.WithPoolSize(1)}, opts...)...)
	if !add("load (imports, exports, abi_version, describe, init)", err, fmt.Sprintf("%d KiB, loaded in %v", fi.Size()>>10, time.Since(start).Round(time.Millisecond))) {
		return rep, fmt.Errorf("%w: %v", ErrNonConformant, err)
	}
	defer p.Close(context.WithoutCancel(ctx))
	rep.Description = p.Description()
	d := rep.Description
	add("describe: version set", nonEmpty(d.Version, "version"), d.Version)
	for _, k := range d.Kinds {
		switch k {
		case abi.KindSerializer:
			s, err := p.Serializer()
			if add("serializer adapter", err, "") {
				checkSerializer(ctx, s, add)
			}
		case abi.KindAggregator:
			a, err := p.Aggregator()
			if add("aggregator adapter", err, "") {
				checkAggregator(ctx, a, add)
			}
		case abi.KindHandler:
			h, err := p.Handler()
			if add("handler adapter", err, "") {
				checkHandler(ctx, h, add)
			}
		}
	}
	if !rep.Passed() {
		var failed []string
		for _, r := range rep.Results {
			if !r.Passed {
				failed = append(failed, r.Name+": "+r.Detail)
			}
		}
		return rep, fmt.Errorf("%w: plugin %q: %s", ErrNonConformant, d.Name, strings.Join(failed, "; "))
	}
	return rep, nil
}

func nonEmpty(s, what string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	return nil
}

type addFunc func(name string, err error, detail string) bool

// SampleItems are the JSON items a serializer must round-trip.
var SampleItems = []any{
	"plain", "", "héllo ✓ 日本", 0.0, 1.0, -1.0, 123.0, 1e300, -0.5, true, false, nil,
	[]any{}, map[string]any{}, []any{1.0, "two", []any{3.0}},
	map[string]any{"test": 123.0, "nested": map[string]any{"k": 760360219.0, "n": nil, "t": true}, "tags": []any{"a", "b"}},
	strings.Repeat("x", 70000),
}

func checkSerializer(ctx context.Context, s records.Serializer, add addFunc) {
	data, err := s.Serialize(ctx, SampleItems)
	if !add("serialize sample items", err, fmt.Sprintf("%d items", len(SampleItems))) {
		return
	}
	back, err := s.Deserialize(ctx, data)
	if !add("deserialize them", err, "") {
		return
	}
	var mismatch error
	for i := range SampleItems {
		a, _ := json.Marshal(SampleItems[i])
		b, _ := json.Marshal(back[i])
		if !bytes.Equal(a, b) {
			mismatch = fmt.Errorf("item %d: %s came back as %s", i, a, b)
			break
		}
	}
	add("round trip gives the items back", mismatch, "")
	empty, err := s.Serialize(ctx, nil)
	if err == nil && len(empty) != 0 {
		err = fmt.Errorf("%d outputs for no items", len(empty))
	}
	add("empty batch", err, "")
}

// SampleRecords are the user records an aggregator must round-trip.
func SampleRecords() []records.UserRecord {
	bin := make([]byte, 300)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	out := []records.UserRecord{
		{PartitionKey: "a", Data: []byte("123")},
		{PartitionKey: "a", Data: []byte("test")},
		{PartitionKey: "b", Data: nil},
		{PartitionKey: "ключ-é", Data: []byte("unicode key")},
		{PartitionKey: "c", ExplicitHashKey: "136498326688907047595659928587492241909", Data: []byte("with hash key")},
		{PartitionKey: "d", Data: bin},
	}
	for i := range 40 {
		out = append(out, records.UserRecord{PartitionKey: fmt.Sprintf("k%d", i%5), Data: bytes.Repeat([]byte{byte('a' + i%26)}, 10+i*13)})
	}
	return out
}

func checkAggregator(ctx context.Context, a records.Aggregator, add addFunc) {
	in := SampleRecords()
	for _, max := range []int{records.MaxRecordSize, 1024} {
		name := fmt.Sprintf("aggregate with max size %d", max)
		out, err := a.Aggregate(ctx, in, max)
		if !add(name, err, fmt.Sprintf("%d records into %d", len(in), len(out))) {
			continue
		}
		total := 0
		var bad error
		for i, o := range out {
			total += o.Count
			if n := len(o.Data) + len(o.PartitionKey); n > max && bad == nil {
				bad = fmt.Errorf("output %d is %d bytes with its key, over %d", i, n, max)
			}
		}
		if bad == nil && total != len(in) {
			bad = fmt.Errorf("output counts cover %d of %d records", total, len(in))
		}
		add(name+": sizes and counts", bad, "")
		kin := make([]records.Record, len(out))
		arrival := time.Unix(1700000000, 0)
		for i, o := range out {
			kin[i] = records.Record{Data: o.Data, PartitionKey: o.PartitionKey, ExplicitHashKey: o.ExplicitHashKey,
				ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(49000 + i), ArrivalTime: arrival}
		}
		back, err := a.Deaggregate(ctx, kin)
		if !add(name+": deaggregate", err, "") {
			continue
		}
		// Formats that carry no per-record key (netstring, newline) give
		// each record its aggregate's key; KPL gives the record's own.
		aggKey := make([]string, 0, len(in))
		for _, o := range out {
			for range o.Count {
				aggKey = append(aggKey, o.PartitionKey)
			}
		}
		bad = nil
		if len(back) != len(in) {
			bad = fmt.Errorf("%d records back, want %d", len(back), len(in))
		}
		for i := 0; bad == nil && i < len(in); i++ {
			if !bytes.Equal(back[i].Data, in[i].Data) || (back[i].PartitionKey != in[i].PartitionKey && back[i].PartitionKey != aggKey[i]) {
				bad = fmt.Errorf("record %d: got key %q data %.40q, want key %q data %.40q", i, back[i].PartitionKey, back[i].Data, in[i].PartitionKey, in[i].Data)
			} else if back[i].ShardID != "shardId-000000000000" || !back[i].ArrivalTime.Equal(arrival) {
				bad = fmt.Errorf("record %d lost its shard or arrival time", i)
			}
		}
		add(name+": round trip gives the records back in order", bad, "")
	}
	var bad error
	for _, r := range in[:6] {
		out, err := a.Aggregate(ctx, []records.UserRecord{r}, records.MaxRecordSize)
		if err != nil || len(out) != 1 {
			bad = fmt.Errorf("aggregating %q alone: %v", r.PartitionKey, err)
			break
		}
		if got, want := a.SizeAlone(r), len(out[0].Data)+len(out[0].PartitionKey); got != want {
			bad = fmt.Errorf("SizeAlone(%q) = %d, the aggregate holding it alone is %d", r.PartitionKey, got, want)
			break
		}
	}
	add("size_alone matches a one-record aggregate", bad, "")
	huge := records.UserRecord{PartitionKey: "h", Data: make([]byte, 2000)}
	out, err := a.Aggregate(ctx, []records.UserRecord{{PartitionKey: "a", Data: []byte("x")}, huge}, 1024)
	items, batch := records.SplitErrors(err)
	bad = batch
	if bad == nil && (len(items) != 1 || items[0].Index != 1 || len(out) != 1 || out[0].Count != 1) {
		bad = fmt.Errorf("a record over the limit must be an item error at index 1 with the rest aggregated; got %v, %d outputs", err, len(out))
	}
	add("oversize record is an item error", bad, "")
	pass, err := a.Deaggregate(ctx, []records.Record{{Data: []byte{}, PartitionKey: "p"}})
	_ = pass
	add("deaggregate tolerates an empty record (item error or pass-through)", batchOnly(err), "")
	_, err = a.Aggregate(ctx, nil, records.MaxRecordSize)
	add("empty batch", err, "")
}

// batchOnly keeps only whole-batch errors.
func batchOnly(err error) error {
	_, b := records.SplitErrors(err)
	return b
}

// SampleBatch is the batch a handler must answer.
func SampleBatch() []records.Record {
	arr := time.Unix(1700000000, 0)
	var out []records.Record
	for i, d := range []string{`{"level":"error","n":1}`, `{"type":"heartbeat"}`, `{"level":"info","text":"héllo"}`, `not json`, ``, `[1,2]`} {
		out = append(out, records.Record{Data: []byte(d), PartitionKey: fmt.Sprintf("pk-%d", i), ShardID: "shardId-000000000001",
			SequenceNumber: fmt.Sprintf("4959033827149025660855969253836157109592157598913658889%d", i), ArrivalTime: arr})
	}
	return out
}

func checkHandler(ctx context.Context, h records.Handler, add addFunc) {
	batch := SampleBatch()
	out, err := h.Handle(ctx, batch)
	if !add("handle a sample batch", err, "") {
		return
	}
	var bad error
	if len(out.Results) != len(batch) {
		bad = fmt.Errorf("%d results for %d records", len(out.Results), len(batch))
	}
	counts := map[records.Status]int{}
	for i, r := range out.Results {
		if r.Status > records.StatusSkip && bad == nil {
			bad = fmt.Errorf("record %d: unknown status %d", i, r.Status)
		}
		counts[r.Status]++
	}
	add("one known status per record", bad, fmt.Sprintf("ok %d, retry %d, fail %d, skip %d", counts[records.StatusOK], counts[records.StatusRetry], counts[records.StatusFail], counts[records.StatusSkip]))
	bad = nil
	for i, e := range out.Emit {
		if n := utf8.RuneCountInString(e.PartitionKey); n == 0 || n > records.MaxPartitionKeyLen {
			bad = fmt.Errorf("emitted record %d has a %d-character partition key (Kinesis needs 1..256)", i, n)
			break
		}
		if len(e.Data)+len(e.PartitionKey) > records.MaxRecordSize {
			bad = fmt.Errorf("emitted record %d is over the Kinesis record size", i)
			break
		}
	}
	add("emitted records are valid Kinesis records", bad, fmt.Sprintf("%d emitted", len(out.Emit)))
	out, err = h.Handle(ctx, nil)
	if err == nil && (len(out.Results) != 0 || len(out.Emit) != 0) {
		err = errors.New("output for an empty batch")
	}
	add("empty batch", err, "")
}
