package shards_test

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
)

// Records yields each record with its shard and sequence number; the
// record is finished (and may be checkpointed) when the loop body returns.
func ExampleConsumer_Records() {
	client := newFake(1) // any kinesisapi.Client; here an in-memory one
	client.put("shardId-000000000000", []byte(`{"order":1}`), []byte(`{"order":2}`), []byte(`{"order":3}`))

	c, err := shards.New(client, "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	n := 0
	for rec, err := range c.Records(context.Background()) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.ShardID, rec.SequenceNumber, rec.Value)
		if n++; n == 3 {
			break // stops the consumer after a final checkpoint
		}
	}
	cp, _ := c.Store().Get(context.Background(), "shardId-000000000000")
	fmt.Println("checkpoint", cp.SequenceNumber, cp.Complete)
	// Output:
	// shardId-000000000000 00000000000000000001 map[order:1]
	// shardId-000000000000 00000000000000000002 map[order:2]
	// shardId-000000000000 00000000000000000003 map[order:3]
	// checkpoint 00000000000000000003 true
}

type printHandler struct{}

func (printHandler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	out := records.HandlerOutput{Results: make([]records.Result, len(batch))}
	for i, r := range batch {
		fmt.Println(r.SequenceNumber, string(r.Data))
		out.Results[i] = records.Result{Status: records.StatusOK}
	}
	return out, nil
}

// Run hands batches to a records.Handler, which returns one verdict per
// record. Several workers share a stream through a Redis lease store.
func ExampleConsumer_Run() {
	ctx := context.Background()
	client, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{Region: "eu-west-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "billing", "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := shards.New(client, "orders",
		shards.Checkpointer(store),
		shards.Processor(records.KPLJSONProcessor()),
		shards.MaxBatchSize(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Run(ctx, printHandler{}); err != nil {
		fmt.Println(err)
	}
}
