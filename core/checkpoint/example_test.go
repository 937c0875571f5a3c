package checkpoint_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// Two workers in one process share a memory backend: the second cannot take
// a held shard, takes it once released, and the first worker's late
// checkpoint is refused.
func ExampleMemoryBackend() {
	ctx := context.Background()
	backend, err := checkpoint.NewMemoryBackend()
	if err != nil {
		panic(err)
	}
	a, _ := backend.Store("app", "orders", checkpoint.WithWorkerID("worker-a"))
	b, _ := backend.Store("app", "orders", checkpoint.WithWorkerID("worker-b"))

	la, _ := a.Take(ctx, "shardId-000000000000")
	fmt.Println("a took the shard, counter", la.Counter)
	_ = a.Checkpoint(ctx, la, checkpoint.Checkpoint{SequenceNumber: "100", Complete: true})

	_, err = b.Take(ctx, "shardId-000000000000")
	fmt.Println("b:", errors.Is(err, checkpoint.ErrLeaseHeld))

	_ = a.Release(ctx, la)
	lb, _ := b.Take(ctx, "shardId-000000000000")
	fmt.Println("b took the shard, counter", lb.Counter, "resuming after", lb.Checkpoint.SequenceNumber)

	err = a.Checkpoint(ctx, la, checkpoint.Checkpoint{SequenceNumber: "150", Complete: true})
	fmt.Println("a:", errors.Is(err, checkpoint.ErrLeaseLost))
	cp, _ := b.Get(ctx, "shardId-000000000000")
	fmt.Println("stored:", cp.SequenceNumber)
	// Output:
	// a took the shard, counter 1
	// b: true
	// b took the shard, counter 2 resuming after 100
	// a: true
	// stored: 100
}

// Checkpoints never go backwards.
func ExampleMerge() {
	stored := checkpoint.Checkpoint{SequenceNumber: "1000", SubSequenceNumber: 2}
	fmt.Println(checkpoint.Merge(stored, checkpoint.Checkpoint{SequenceNumber: "999", Complete: true}))
	fmt.Println(checkpoint.Merge(stored, checkpoint.Checkpoint{SequenceNumber: "1000", SubSequenceNumber: 5}))
	fmt.Println(checkpoint.CompareSequence("1000", "999"))
	// Output:
	// {1000 2 false false}
	// {1000 5 false false}
	// 1
}
