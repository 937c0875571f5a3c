package redisstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/tests/harness"
)

// Two workers share a stream's leases through Redis; the worker that lost
// its lease cannot write a checkpoint.
func Example() {
	ctx := context.Background()
	srv, err := harness.FindOrStartRedis(ctx) // or redis.NewClient(&redis.Options{Addr: ...})
	if err != nil {
		fmt.Println(err)
		return
	}
	opt, _ := redis.ParseURL(srv.URL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	app := "example-" + checkpoint.DefaultWorkerID() // a fresh namespace for the example
	a, _ := redisstore.New(rdb, app, "orders", redisstore.WithWorkerID("worker-a"))
	b, _ := redisstore.New(rdb, app, "orders", redisstore.WithWorkerID("worker-b"))
	defer func() {
		keys, _ := rdb.Keys(ctx, a.KeyPrefix()+"*").Result()
		rdb.Del(ctx, keys...)
	}()

	la, _ := a.Take(ctx, "shardId-000000000000")
	_ = a.Checkpoint(ctx, la, checkpoint.Checkpoint{SequenceNumber: "100", Complete: true})
	_, err = b.Take(ctx, "shardId-000000000000")
	fmt.Println("b while a holds it:", errors.Is(err, checkpoint.ErrLeaseHeld))

	_ = a.Release(ctx, la)
	lb, _ := b.Take(ctx, "shardId-000000000000")
	fmt.Println("b resumes after", lb.Checkpoint.SequenceNumber, "with counter", lb.Counter)

	err = a.Checkpoint(ctx, la, checkpoint.Checkpoint{SequenceNumber: "150", Complete: true})
	fmt.Println("a's late checkpoint:", errors.Is(err, checkpoint.ErrLeaseLost))

	live, errs, _ := b.HeartbeatAll(ctx, []checkpoint.Lease{lb})
	fmt.Println("live workers:", live, "renewal error:", errs[0])
	// Output:
	// b while a holds it: true
	// b resumes after 100 with counter 2
	// a's late checkpoint: true
	// live workers: 1 renewal error: <nil>
}
