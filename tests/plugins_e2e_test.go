package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/tests/harness"
)

// enrichConfig makes the enrich plugin add two fields and key emitted
// records by the item's "key"; skipping (type=heartbeat) and routing
// (level error or warn) keep their defaults.
const enrichConfig = `{"add":{"pipeline":"e2e","version":2},"partition_key_field":"key"}`

// kplMagic starts every KPL aggregated record.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// invalidRecord is neither msgpack (0xC1 is never used in msgpack) nor
// JSON.
var invalidRecord = []byte("\xc1 this is not an item")

// pluginPipeline holds the WebAssembly plugins of the end-to-end runs.
type pluginPipeline struct {
	// proc is the producer's and the consumer's processor: the WASM msgpack
	// serializer and the WASM KPL aggregator.
	proc records.Processor
	// enrich is the WASM enrich record handler.
	enrich records.Handler
}

func loadPluginPipeline(t *testing.T) pluginPipeline {
	paths := buildPlugins(t, t.TempDir(), "msgpack", "kpl", "enrich")
	ser, err := loadPlugin(t, paths["msgpack"]).Serializer()
	if err != nil {
		t.Fatal(err)
	}
	agg, err := loadPlugin(t, paths["kpl"]).Aggregator()
	if err != nil {
		t.Fatal(err)
	}
	h, err := loadPlugin(t, paths["enrich"], host.WithConfig([]byte(enrichConfig))).Handler()
	if err != nil {
		t.Fatal(err)
	}
	return pluginPipeline{proc: records.Processor{Name: "wasm-msgpack-kpl", Serializer: ser, Aggregator: agg}, enrich: h}
}

// pipelineItem is item i: every 7th is a heartbeat, levels cycle through
// error, warn, info, info, debug; 40 partition keys.
func pipelineItem(i int) map[string]any {
	typ := "event"
	if i%7 == 3 {
		typ = "heartbeat"
	}
	return map[string]any{
		"id": i, "key": fmt.Sprintf("key-%d", i%40), "type": typ,
		"level": [...]string{"error", "warn", "info", "info", "debug"}[i%5],
		"msg":   fmt.Sprintf("message %d", i),
	}
}

func isHeartbeat(item map[string]any) bool { return item["type"] == "heartbeat" }

func isRouted(item map[string]any) bool {
	return !isHeartbeat(item) && (item["level"] == "error" || item["level"] == "warn")
}

// TestPluginPipeline runs the producer and the consumer with WebAssembly
// plugins only, against kinesalite: items go through the WASM msgpack
// serializer and the WASM KPL aggregator into a 2-shard stream; a consumer
// unpacks them with the WASM KPL deaggregator and hands them to the WASM
// enrich handler, whose emitted records go to an output stream.
func TestPluginPipeline(t *testing.T) {
	env := harness.Kinesis(t)
	pl := loadPluginPipeline(t)

	// Every item is delivered once: heartbeats skipped, the others handled,
	// and exactly the error and warn items arrive enriched in the output.
	t.Run("clean", func(t *testing.T) {
		runPluginPipeline(t, env, pl, 4000, -1)
	})
	// A record that is not an item, put straight into the stream among the
	// producer's aggregates, fails in the handler and is reported; every
	// other record is delivered.
	t.Run("invalid-record", func(t *testing.T) {
		runPluginPipeline(t, env, pl, 600, 300)
	})
}

// runPluginPipeline produces n items; when invalidAt ≥ 0, invalidRecord is
// put straight into the input stream after item invalidAt-1 was delivered.
func runPluginPipeline(t *testing.T, env *harness.Env, pl pluginPipeline, n, invalidAt int) {
	ctx := testCtx(t, 2*time.Minute)
	in, out := env.NewStream(t, 2), env.NewStream(t, 1)
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = pipelineItem(i)
	}

	// Produce with the WASM serializer and aggregator.
	p, err := batch.Open(ctx, env.Client, in, append(unlimited, batch.WithProcessor(pl.proc))...)
	if err != nil {
		t.Fatal(err)
	}
	invalidSeq := ""
	for i, it := range items {
		if i == invalidAt {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			seqs := putEntries(t, env, in, []types.PutRecordsRequestEntry{{Data: invalidRecord, PartitionKey: aws.String("key-0")}})
			invalidSeq = seqs[0]
		}
		if err := p.PutWithKey(ctx, it, it["key"].(string)); err != nil {
			t.Fatalf("put item %d: %v", i, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	if st := p.Stats(); st.RecordsDelivered != int64(n) || st.Failed != 0 {
		t.Fatalf("producer stats %+v, want %d delivered, none failed", st, n)
	}
	where := checkPluginInput(t, env, in, items, invalidSeq)

	// Consume with the WASM deaggregator and the WASM handler.
	output := openPluginOutput(t, ctx, env, out)
	var errs errorLog
	nInvalid := 0
	if invalidSeq != "" {
		nInvalid = 1
	}
	tally := newPipelineTally(n + nInvalid)
	c := newConsumer(t, env, in, shards.Processor(pl.proc), shards.Emit(output.emit), shards.ErrorCallback(errs.add))
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx, &jsonItemHandler{ser: pl.proc.Serializer, next: pl.enrich, tally: tally}) }()
	select {
	case <-tally.done:
	case err := <-runErr:
		t.Fatalf("Run returned %v after %d of %d records", err, tally.count(), n+nInvalid)
	case <-ctx.Done():
		t.Fatalf("%d of %d records handled before the deadline; errors: %v", tally.count(), n+nInvalid, errs.all())
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("close consumer: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := output.p.Close(ctx); err != nil {
		t.Fatalf("close output producer: %v", err)
	}

	shardMap := kinesisapi.NewShardMap(mustListShards(t, ctx, env, in))
	checkPluginVerdicts(t, tally, items, where, shardMap)
	checkPluginErrors(t, errs.all(), tally, in, invalidSeq)
	st := c.Stats()
	if want := int64(n + nInvalid); st.RecordsFetched != want || st.RecordsDelivered != want || st.RecordsFinished != want ||
		st.HandlerFailures != int64(nInvalid) || st.DecodeErrors != 0 {
		t.Errorf("consumer stats %+v, want %d fetched, delivered and finished once, %d handler failures", st, want, nInvalid)
	}
	emitted := checkPluginOutput(t, env, out, items, tally)
	t.Logf("%d items in %d KPL records; %d handled, %d skipped, %d emitted; %d GetRecords calls",
		n, st.KinesisRecords-int64(nInvalid), n-countHeartbeats(items), countHeartbeats(items), emitted, st.GetRecordsCalls)
}

func countHeartbeats(items []map[string]any) int {
	n := 0
	for _, it := range items {
		if isHeartbeat(it) {
			n++
		}
	}
	return n
}

func mustListShards(t *testing.T, ctx context.Context, env *harness.Env, stream string) []kinesisapi.Shard {
	t.Helper()
	s, err := kinesisapi.ListShards(ctx, env.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkPluginInput reads the input stream back: every Kinesis record from
// the producer is a KPL aggregate, there are fewer of them than items, and
// the native KPL deaggregator and msgpack serializer recover exactly the
// items, in order per key. The only other record is the invalid one (at
// invalidSeq, when set). It returns where each item id was written.
func checkPluginInput(t *testing.T, env *harness.Env, stream string, items []map[string]any, invalidSeq string) map[int]records.Record {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	raw, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	var in []records.Record
	for _, r := range raw {
		seq := aws.ToString(r.SequenceNumber)
		if invalidSeq != "" && seq == invalidSeq {
			if !bytes.Equal(r.Data, invalidRecord) {
				t.Fatalf("record %s holds %q, want the invalid record", seq, r.Data)
			}
			continue
		}
		if !bytes.HasPrefix(r.Data, kplMagic) {
			t.Fatalf("record %s is not a KPL aggregate: % x", seq, r.Data[:min(len(r.Data), 16)])
		}
		in = append(in, records.Record{Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: seq})
	}
	if len(in)+btoi(invalidSeq != "") != len(raw) {
		t.Fatalf("the invalid record %s is not in the stream", invalidSeq)
	}
	if len(in) >= len(items) {
		t.Fatalf("%d items in %d Kinesis records: not aggregated", len(items), len(in))
	}
	native := records.MsgpackProcessor().Serializer
	recs, err := records.KPLAggregator{}.Deaggregate(ctx, in)
	if err != nil {
		t.Fatalf("native KPL deaggregation: %v", err)
	}
	data := make([][]byte, len(recs))
	for i, r := range recs {
		data[i] = r.Data
	}
	got, err := native.Deserialize(ctx, data)
	if err != nil {
		t.Fatalf("native msgpack deserialization: %v", err)
	}
	want := make([]any, len(items))
	for i, it := range items {
		want[i] = it
	}
	checkSameItems(t, want, got, itemKey)
	where := make(map[int]records.Record, len(recs))
	for i, r := range recs {
		id := itemID(t, got[i])
		if r.PartitionKey != items[id]["key"] {
			t.Fatalf("item %d has partition key %q, want %q", id, r.PartitionKey, items[id]["key"])
		}
		where[id] = r
	}
	return where
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkPluginVerdicts: every item got exactly one verdict, SKIP for a
// heartbeat and OK for the others, on a record with the item's position in
// the stream and its partition key, as JSON.
func checkPluginVerdicts(t *testing.T, tally *pipelineTally, items []map[string]any, where map[int]records.Record, shardMap *kinesisapi.ShardMap) {
	t.Helper()
	tally.mu.Lock()
	defer tally.mu.Unlock()
	errorf, done := capErrors(t)
	defer done()
	dups, missing := 0, 0
	for id, it := range items {
		vs := tally.byID[id]
		switch {
		case len(vs) == 0:
			missing++
			continue
		case len(vs) > 1:
			dups++
		}
		v := vs[0]
		if isHeartbeat(it) {
			if v.res.Status != records.StatusSkip || v.res.Message != "type=heartbeat filtered" {
				errorf("heartbeat %d: verdict %v %q, want skip", id, v.res.Status, v.res.Message)
			}
		} else if v.res.Status != records.StatusOK {
			errorf("item %d: verdict %v %q, want ok", id, v.res.Status, v.res.Message)
		}
		w := where[id]
		shard, err := shardMap.ShardFor(w.PartitionKey, "")
		if err != nil {
			t.Fatal(err)
		}
		if v.rec.SequenceNumber != w.SequenceNumber || v.rec.SubSequenceNumber != w.SubSequenceNumber || !v.rec.Aggregated ||
			v.rec.PartitionKey != w.PartitionKey || v.rec.ShardID != shard.ID {
			errorf("item %d handled as %s %s/%d key %q (aggregated %v), written to %s %s/%d key %q",
				id, v.rec.ShardID, v.rec.SequenceNumber, v.rec.SubSequenceNumber, v.rec.PartitionKey, v.rec.Aggregated,
				shard.ID, w.SequenceNumber, w.SubSequenceNumber, w.PartitionKey)
		}
		if v.rec.ArrivalTime.IsZero() {
			errorf("item %d handled without an arrival time", id)
		}
		if want := canon(t, it); string(v.rec.Data) != want {
			errorf("item %d reached the handler as %s, want %s", id, v.rec.Data, want)
		}
	}
	if dups != 0 || missing != 0 || len(tally.byID) != len(items) {
		t.Fatalf("%d of %d items handled more than once, %d never, %d ids handled", dups, len(items), missing, len(tally.byID))
	}
}

// checkPluginErrors: on a clean run the consumer reports nothing; with the
// invalid record it reports exactly that record, failed by the enrich
// handler as invalid JSON.
func checkPluginErrors(t *testing.T, errs []error, tally *pipelineTally, stream, invalidSeq string) {
	t.Helper()
	tally.mu.Lock()
	other := tally.other
	tally.mu.Unlock()
	if invalidSeq == "" {
		if len(errs) != 0 || len(other) != 0 {
			t.Fatalf("clean run: errors %v, %d records without an item", errs, len(other))
		}
		return
	}
	if len(other) != 1 {
		t.Fatalf("%d records without an item reached the handler, want the invalid one", len(other))
	}
	v := other[0]
	if v.rec.SequenceNumber != invalidSeq || !bytes.Equal(v.rec.Data, invalidRecord) || v.rec.Aggregated ||
		v.res.Status != records.StatusFail || !strings.Contains(v.res.Message, "invalid JSON") {
		t.Fatalf("invalid record: handled %s/%d (aggregated %v) data %q: %v %q, want a failure at %s",
			v.rec.SequenceNumber, v.rec.SubSequenceNumber, v.rec.Aggregated, v.rec.Data, v.res.Status, v.res.Message, invalidSeq)
	}
	if len(errs) != 1 {
		t.Fatalf("errors %v, want one for the invalid record", errs)
	}
	var re *shards.RecordError
	if !errors.As(errs[0], &re) || !errors.Is(errs[0], shards.ErrHandlerFailed) {
		t.Fatalf("error %v (%T), want a *shards.RecordError wrapping ErrHandlerFailed", errs[0], errs[0])
	}
	if re.Stream != stream || re.ShardID != v.rec.ShardID || re.SequenceNumber != invalidSeq || re.SubSequenceNumber != 0 ||
		!strings.Contains(re.Error(), v.res.Message) {
		t.Fatalf("error %v, want stream %s shard %s record %s/0 with the handler's message %q", re, stream, v.rec.ShardID, invalidSeq, v.res.Message)
	}
}

// checkPluginOutput: the output stream holds exactly the error and warn
// items that are not heartbeats, once each, as the enrich plugin writes
// them: the item's JSON followed by the record's metadata and the
// configured fields, keyed by the item's key. It returns how many.
func checkPluginOutput(t *testing.T, env *harness.Env, stream string, items []map[string]any, tally *pipelineTally) int {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	raw, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	tally.mu.Lock()
	defer tally.mu.Unlock()
	errorf, done := capErrors(t)
	defer done()
	seen := map[int]int{}
	for _, r := range raw {
		var got map[string]any
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatalf("output record %s is not JSON: %v: %q", aws.ToString(r.SequenceNumber), err, r.Data)
		}
		f, ok := got["id"].(float64)
		if !ok || int(f) < 0 || int(f) >= len(items) || len(tally.byID[int(f)]) == 0 {
			t.Fatalf("output record %s has no known item id: %s", aws.ToString(r.SequenceNumber), r.Data)
		}
		id := int(f)
		seen[id]++
		it, h := items[id], tally.byID[id][0].rec
		if !isRouted(it) {
			errorf("item %d (level %v, type %v) was emitted", id, it["level"], it["type"])
		}
		if key := aws.ToString(r.PartitionKey); key != it["key"] {
			errorf("item %d emitted with partition key %q, want %q", id, key, it["key"])
		}
		// The handler's input bytes are kept, the fields appended.
		if prefix := h.Data[:len(h.Data)-1]; !bytes.HasPrefix(r.Data, prefix) {
			errorf("item %d emitted as %s, want it to start with %s", id, r.Data, prefix)
		}
		want := maps.Clone(it)
		want["_shard"] = h.ShardID
		want["_sequence"] = h.SequenceNumber
		want["_subsequence"] = h.SubSequenceNumber
		want["_partition_key"] = h.PartitionKey
		want["_arrival"] = h.ArrivalTime.UTC().Format(time.RFC3339Nano)
		want["pipeline"] = "e2e"
		want["version"] = 2
		if g, w := canon(t, got), canon(t, want); g != w {
			errorf("item %d emitted as\n%s\nwant\n%s", id, g, w)
		}
	}
	dups, missing, emitted := 0, 0, 0
	for id, it := range items {
		switch {
		case !isRouted(it):
		case seen[id] == 0:
			missing++
		case seen[id] > 1:
			dups++
		}
		if isRouted(it) {
			emitted++
		}
	}
	if dups != 0 || missing != 0 || len(raw) != emitted {
		t.Fatalf("output stream: %d records for %d routed items, %d missing, %d more than once", len(raw), emitted, missing, dups)
	}
	return emitted
}

// capErrors returns an Errorf that reports the first ten failures and a
// function that counts the rest, so a systematic mismatch over thousands of
// records stays readable.
func capErrors(t *testing.T) (errorf func(format string, args ...any), done func()) {
	n := 0
	errorf = func(format string, args ...any) {
		t.Helper()
		n++
		if n <= 10 {
			t.Errorf(format, args...)
		}
	}
	done = func() {
		if n > 10 {
			t.Errorf("... and %d more mismatches", n-10)
		}
	}
	return errorf, done
}
