package tests

import (
	"context"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/tests/harness"
)

// Seed acceptance case 6 and the resharding case: SplitShard and
// MergeShards while producing. Every record is delivered once, and for each
// partition key in write order, so every parent's records came before its
// children's. Closed shards end checkpointed as finished and released.
func TestConsumerReshardSplitAndMerge(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const keys = 24
	var (
		mu      sync.Mutex
		written int
	)
	// The producer writes rounds of one record per key; item N counts up
	// per key.
	produce := func(rounds int) {
		for range rounds {
			mu.Lock()
			base := written
			written += keys
			mu.Unlock()
			entries := make([]types.PutRecordsRequestEntry, keys)
			for i := range entries {
				entries[i] = itemEntry(t, testItem{ID: idOf(base + i), Key: keyOf(i), N: base / keys})
			}
			putEntries(t, env, stream, entries)
		}
	}

	c := newConsumer(t, env, stream)
	type delivery struct {
		shard string
		it    testItem
	}
	deliveries := make(chan delivery, 100000)
	runDone := make(chan error, 1)
	go func() {
		for rec, err := range c.Records(ctx) {
			if err != nil {
				runDone <- err
				return
			}
			deliveries <- delivery{rec.ShardID, decodeItem(t, rec)}
		}
		runDone <- nil
	}()

	produce(10)
	split(t, ctx, env, stream, "shardId-000000000000")
	produce(10)
	// After the split, shard 1 and the upper child of shard 0 are adjacent.
	merge(t, ctx, env, stream, "shardId-000000000003", "shardId-000000000001")
	produce(10)

	total := written
	lastN := map[string]int{}
	shardOf := map[string][]string{}
	seen := map[string]bool{}
	for len(seen) < total {
		select {
		case d := <-deliveries:
			if seen[d.it.ID] {
				t.Fatalf("%s delivered twice", d.it.ID)
			}
			seen[d.it.ID] = true
			if n, ok := lastN[d.it.Key]; ok && d.it.N <= n {
				t.Fatalf("key %s: round %d delivered after round %d (shard %s after %v)", d.it.Key, d.it.N, n, d.shard, shardOf[d.it.Key])
			}
			lastN[d.it.Key] = d.it.N
			if s := shardOf[d.it.Key]; len(s) == 0 || s[len(s)-1] != d.shard {
				shardOf[d.it.Key] = append(shardOf[d.it.Key], d.shard)
			}
		case err := <-runDone:
			t.Fatalf("consumer stopped after %d of %d records: %v", len(seen), total, err)
		case <-ctx.Done():
			t.Fatalf("%d of %d records delivered before the deadline", len(seen), total)
		}
	}
	// Wait until the consumer has checkpointed the closed shards as
	// finished: the merge child starts only after both its parents are.
	all, err := kinesisapi.ListShards(ctx, env.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("stream has %d shards after a split and a merge, want 5", len(all))
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	infos, err := c.Store().Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]bool{}
	for _, li := range infos {
		state[li.Shard] = li.Checkpoint.Finished
		if li.Owner != "" {
			t.Errorf("shard %s still leased by %s after the consumer stopped", li.Shard, li.Owner)
		}
	}
	for _, s := range all {
		if s.Closed != state[s.ID] {
			t.Errorf("shard %s: closed=%v but checkpointed finished=%v", s.ID, s.Closed, state[s.ID])
		}
	}
	var moved int
	for _, s := range shardOf {
		if len(s) > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key's records moved to a child shard: the reshard was not exercised")
	}
}

func idOf(i int) string  { return "x-" + big.NewInt(int64(i)).String() }
func keyOf(i int) string { return "key-" + big.NewInt(int64(i)).String() }

func itemEntry(t testing.TB, it testItem) types.PutRecordsRequestEntry {
	t.Helper()
	b, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	return types.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(it.Key)}
}

func split(t testing.TB, ctx context.Context, env *harness.Env, stream, shard string) {
	t.Helper()
	all, err := kinesisapi.ListShards(ctx, env.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.ID != shard {
			continue
		}
		lo := new(big.Int).SetBytes(s.StartingHashKey[:])
		hi := new(big.Int).SetBytes(s.EndingHashKey[:])
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		_, err := env.Client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(mid.String())})
		if err != nil {
			t.Fatalf("split %s: %v", shard, err)
		}
		waitActive(t, ctx, env, stream)
		return
	}
	t.Fatalf("no shard %s to split", shard)
}

func merge(t testing.TB, ctx context.Context, env *harness.Env, stream, a, b string) {
	t.Helper()
	_, err := env.Client.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b)})
	if err != nil {
		t.Fatalf("merge %s and %s: %v", a, b, err)
	}
	waitActive(t, ctx, env, stream)
}

func waitActive(t testing.TB, ctx context.Context, env *harness.Env, stream string) {
	t.Helper()
	// CreateStream leaves an existing stream as it is and waits for ACTIVE.
	if err := harness.CreateStream(ctx, env.Client, stream, 1); err != nil {
		t.Fatalf("wait for %s: %v", stream, err)
	}
}
