package tests

import (
	"bytes"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

// syncBuffer is a bytes.Buffer safe for the producer's goroutine and the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProducerFollowsSplit splits the only shard while the producer runs:
// Kinesis then reports records on the children, the producer lists the
// shards again, and every record arrives.
func TestProducerFollowsSplit(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	ctx := testCtx(t, 2*time.Minute)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	proc := records.JSONProcessor()
	p, err := batch.Open(ctx, env.Client, stream, append(unlimited, batch.WithProcessor(proc), batch.Logger(logger))...)
	if err != nil {
		t.Fatal(err)
	}
	var want []any
	put := func(from, n int) {
		for i := from; i < from+n; i++ {
			item := producerItem(proc.Name, i, 100, "")
			want = append(want, item)
			if err := p.Put(ctx, item); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 1000)

	shards, err := kinesisapi.ListShards(ctx, env.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	mid := new(big.Int).Rsh(new(big.Int).Lsh(big.NewInt(1), 128), 1)
	if _, err := env.Client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(shards[0].ID), NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateStream(ctx, env.Client, stream, 1); err != nil { // waits for ACTIVE
		t.Fatal(err)
	}
	// Records now land on the children. The producer lists the shards again
	// at most a second after its previous listing; keep producing until it
	// has (or the test's deadline).
	next := 1000
	for !strings.Contains(logs.String(), "shards=2") {
		if ctx.Err() != nil {
			t.Fatalf("the producer did not pick up the two children; log:\n%s", logs.String())
		}
		put(next, 200)
		next += 200
	}
	put(next, 1000)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readItems(t, env, stream, proc)
	checkSameItems(t, want, got, nil)
}
