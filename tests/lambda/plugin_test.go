package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

func kplOf(t testing.TB, pk string, items ...string) records.Aggregated {
	t.Helper()
	in := make([]records.UserRecord, len(items))
	for i, it := range items {
		in[i] = records.UserRecord{PartitionKey: fmt.Sprintf("%s-%d", pk, i), Data: []byte(it)}
	}
	out, err := records.KPLAggregator{}.Aggregate(context.Background(), in, records.MaxRecordSize)
	if err != nil || len(out) != 1 {
		t.Fatalf("aggregate: %v", err)
	}
	return out[0]
}

// pluginFunction runs the consumer with the enrich example plugin, loaded
// from the package's precompiled cache.
func pluginFunction(t *testing.T, kin *harness.Env, config string, env ...string) *harness.RIE {
	dir := pluginPackage(t)
	return function(t, kin, "consumer", append([]string{
		"LAMBDA_TASK_ROOT=" + dir,
		"SHARDWORK_PROCESSOR=kpl-json",
		"SHARDWORK_HANDLER_PLUGIN=plugins/enrich.wasm",
		"SHARDWORK_HANDLER_PLUGIN_CONFIG=" + config,
	}, env...)...)
}

// The handler plugin sees every user record (plain and KPL aggregated) with
// its metadata: enrich adds the metadata to each record and emits it to the
// output stream, which is read back.
func TestConsumerHandlerPluginSeesEveryUserRecord(t *testing.T) {
	kin := harness.Kinesis(t)
	in, out := kin.NewStream(t, 1), kin.NewStream(t, 1)
	put(t, kin, in,
		records.Aggregated{PartitionKey: "p0", Data: []byte(`{"id":"p0"}`)},
		kplOf(t, "k", `{"id":"k0"}`, `{"id":"k1","type":"heartbeat"}`, `{"id":"k2"}`),
		records.Aggregated{PartitionKey: "p4", Data: []byte(`{"id":"p4"}`)})
	read := readAll(t, kin, in)
	fn := pluginFunction(t, kin, `{"route_field":"","add":{"env":"e2e"}}`, "SHARDWORK_OUTPUT_STREAM="+out)
	var resp batchResponse
	invoke(t, fn, event(in, read), &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.ids())
	}
	type enriched struct {
		ID    string `json:"id"`
		Shard string `json:"_shard"`
		Seq   string `json:"_sequence"`
		Sub   int64  `json:"_subsequence"`
		PK    string `json:"_partition_key"`
		Env   string `json:"env"`
	}
	var got []enriched
	for _, r := range userRecords(t, records.KPLAggregator{}, readAll(t, kin, out)) {
		var e enriched
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatalf("output %q: %v", r.Data, err)
		}
		got = append(got, e)
	}
	seq := func(i int) string { return aws.ToString(read[i].SequenceNumber) }
	want := []enriched{
		{"p0", "shardId-000000000000", seq(0), 0, "p0", "e2e"},
		{"k0", "shardId-000000000000", seq(1), 0, "k-0", "e2e"},
		{"k2", "shardId-000000000000", seq(1), 2, "k-2", "e2e"}, // k1 is a heartbeat: skipped
		{"p4", "shardId-000000000000", seq(2), 0, "p4", "e2e"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("output stream:\n%+v\nwant\n%+v", got, want)
	}
}

// A record the handler fails in the middle of a batch (inside a KPL
// aggregate): the response names that aggregate's sequence number and
// nothing before it.
func TestConsumerHandlerFailureMidBatch(t *testing.T) {
	kin := harness.Kinesis(t)
	in := kin.NewStream(t, 1)
	put(t, kin, in,
		records.Aggregated{PartitionKey: "a", Data: []byte(`{"id":"a"}`)},
		records.Aggregated{PartitionKey: "b", Data: []byte(`{"id":"b"}`)},
		kplOf(t, "k", `{"id":"k0"}`, `[1,2]`, `{"id":"k2"}`), // enrich fails a JSON value that is not an object
		records.Aggregated{PartitionKey: "d", Data: []byte(`[3]`)},
		records.Aggregated{PartitionKey: "e", Data: []byte(`{"id":"e"}`)})
	read := readAll(t, kin, in)
	cached := cacheEntries(t, pluginPackage(t))
	fn := pluginFunction(t, kin, `{}`)
	var resp batchResponse
	invoke(t, fn, event(in, read), &resp)
	if got, want := resp.ids(), []string{aws.ToString(read[2].SequenceNumber)}; !slices.Equal(got, want) {
		t.Fatalf("failures %v, want exactly the aggregate's %v", got, want)
	}
	// Lambda retries from there; past the failing records all is well.
	resp = batchResponse{}
	invoke(t, fn, event(in, read[4:]), &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.ids())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reps, err := fn.WaitReports(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := cacheEntries(t, pluginPackage(t)); got != cached {
		t.Errorf("the shipped cache went from %d to %d entries: the cold start compiled instead of using it", cached, got)
	}
	t.Logf("consumer with the enrich plugin from the shipped cache: init %v, first invocation %v, warm %v",
		reps[0].InitDuration, reps[0].Duration, reps[1].Duration)
}

// Without a shipped cache the plugin is compiled into the cache directory
// at cold start, and a second cold start reuses it.
func TestConsumerPluginCompiledAtColdStart(t *testing.T) {
	kin := harness.Kinesis(t)
	dir := pluginPackage(t)
	cache := t.TempDir()
	var inits []time.Duration
	for i := 0; i < 2; i++ {
		fn := function(t, kin, "consumer", "SHARDWORK_PROCESSOR=kpl-json", "SHARDWORK_PLUGIN_CACHE="+cache,
			"SHARDWORK_HANDLER_PLUGIN="+filepath.Join(dir, "plugins", "enrich.wasm"))
		var resp batchResponse
		invoke(t, fn, kinesisEventJSON(t, 10), &resp)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", resp.ids())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		reps, err := fn.WaitReports(ctx, 1)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		inits = append(inits, reps[0].InitDuration)
		fn.Stop()
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "*")); len(entries) == 0 {
		t.Errorf("nothing was compiled into %s", cache)
	}
	t.Logf("cold starts: compiling %v, then from the cache it filled %v", inits[0], inits[1])
}

// cacheEntries counts the compiled modules in a package's plugin-cache.
func cacheEntries(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "plugin-cache", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}
