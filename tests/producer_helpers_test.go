package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

// producerItems is how many items the round-trip tests put per processor:
// SHARDWORK_E2E_ITEMS, default 10,000.
func producerItems(t testing.TB) int {
	if s := os.Getenv("SHARDWORK_E2E_ITEMS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SHARDWORK_E2E_ITEMS=%q: want a positive integer", s)
		}
		return n
	}
	return 10000
}

// producerItem is item i of about size bytes, for processor proc: a string for
// the string processors, a JSON-able map for the others. Its "id" field (or
// its prefix) identifies it; its key routes it.
func producerItem(proc string, i, size int, key string) any {
	pad := strings.Repeat("abcdefghij", max(size-40, 0)/10)
	if proc == records.NameString || proc == records.NameKPLString {
		return fmt.Sprintf("%08d|%s|%s", i, key, pad)
	}
	return map[string]any{"id": i, "key": key, "pad": pad, "ok": true}
}

// canon is an item's comparable form: its JSON with sorted keys (numbers of
// any Go type print the same).
func canon(t testing.TB, item any) string {
	b, err := json.Marshal(item)
	if err != nil {
		t.Fatalf("canon %v: %v", item, err)
	}
	return string(b)
}

// itemID is the id testItem put in item.
func itemID(t testing.TB, item any) int {
	switch v := item.(type) {
	case string:
		n, err := strconv.Atoi(v[:8])
		if err != nil {
			t.Fatalf("item %q: %v", v[:min(len(v), 20)], err)
		}
		return n
	case map[string]any:
		switch id := v["id"].(type) {
		case float64:
			return int(id)
		case int64:
			return int(id)
		case uint64:
			return int(id)
		}
	}
	t.Fatalf("item without id: %T %v", item, item)
	return 0
}

// readItems reads every record of the stream, deaggregates and decodes it
// with proc, and returns the items with their partition keys in stream
// order (shard by shard, then sequence and sub-sequence).
func readItems(t testing.TB, env *harness.Env, stream string, proc records.Processor) (items []any, keys []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	in := make([]records.Record, len(raw))
	for i, r := range raw {
		in[i] = records.Record{Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber)}
		if r.ApproximateArrivalTimestamp != nil {
			in[i].ArrivalTime = *r.ApproximateArrivalTimestamp
		}
	}
	recs, err := proc.Aggregator.Deaggregate(ctx, in)
	if err != nil {
		t.Fatalf("deaggregate %d records with %s: %v", len(in), proc.Name, err)
	}
	data := make([][]byte, len(recs))
	for i, r := range recs {
		data[i] = r.Data
		keys = append(keys, r.PartitionKey)
	}
	items, err = proc.Serializer.Deserialize(ctx, data)
	if err != nil {
		t.Fatalf("deserialize %d records with %s: %v", len(data), proc.Name, err)
	}
	return items, keys
}

// checkSameItems asserts that got is exactly the multiset want and that
// items of the same key (keyOf) come in increasing id order.
func checkSameItems(t testing.TB, want, got []any, keyOf func(any) string) {
	t.Helper()
	count := map[string]int{}
	for _, w := range want {
		count[canon(t, w)]++
	}
	for _, g := range got {
		c := canon(t, g)
		count[c]--
		if count[c] < 0 {
			t.Fatalf("unexpected or duplicate item %.80s", c)
		}
	}
	missing := 0
	for _, n := range count {
		missing += n
	}
	if missing != 0 || len(got) != len(want) {
		t.Fatalf("read back %d items, want %d (%d missing)", len(got), len(want), missing)
	}
	if keyOf == nil {
		return
	}
	last := map[string]int{}
	for _, g := range got {
		k, id := keyOf(g), itemID(t, g)
		if l, ok := last[k]; ok && l >= id {
			t.Fatalf("key %s: item %d read after item %d", k, id, l)
		}
		last[k] = id
	}
}

func itemKey(item any) string {
	switch v := item.(type) {
	case string:
		return strings.SplitN(v, "|", 3)[1]
	case map[string]any:
		s, _ := v["key"].(string)
		return s
	}
	return ""
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func deleteStream(t testing.TB, env *harness.Env, name string) {
	ctx := testCtx(t, 30*time.Second)
	_, err := env.Client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	if err != nil && !kinesisapi.IsNotFound(err) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func openShards(t testing.TB, env *harness.Env, name string) int {
	shards, err := kinesisapi.ListShards(testCtx(t, 30*time.Second), env.Client, name)
	if err != nil {
		t.Fatal(err)
	}
	return kinesisapi.NewShardMap(shards).Len()
}
