package batch_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// Open a producer on an existing stream, put items keyed by customer so
// that each customer's items stay in order, and close it, which delivers
// everything still queued.
func Example() {
	ctx := context.Background()
	client, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{Region: "eu-west-1"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := batch.Open(ctx, client, "orders",
		batch.WithProcessor(records.KPLJSONProcessor()),
		batch.BufferTime(200*time.Millisecond),
		batch.ErrorCallback(func(fr batch.FailedRecord) { log.Printf("lost: %v", fr) }))
	if err != nil {
		log.Fatal(err)
	}
	for i := range 100 {
		order := map[string]any{"id": i, "customer": fmt.Sprint("c", i%7)}
		if err := p.PutWithKey(ctx, order, fmt.Sprint("c", i%7)); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		var de *batch.DeliveryError
		if errors.As(err, &de) {
			log.Printf("%d records not delivered", de.Count)
		}
		log.Fatal(err)
	}
	st := p.Stats()
	fmt.Println(st.RecordsDelivered, "delivered in", st.KinesisRecords, "Kinesis records")
}

// Options are checked once, by New, and errors name the bad option.
func ExampleNew_invalidOption() {
	_, err := batch.New(nilClient{}, "orders", batch.BatchSize(501))
	fmt.Println(err)
	fmt.Println(errors.Is(err, batch.ErrInvalidOption))
	// Output:
	// invalid producer option: BatchSize 501: want 1..500
	// true
}

type nilClient struct{ kinesisapi.Client }
