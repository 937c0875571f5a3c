package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/shardwork/shardwork/core/records"
)

// failOn fails the records whose data is "bad".
type failOn struct{}

func (failOn) Handle(_ context.Context, batch []records.Record) (records.HandlerOutput, error) {
	out := records.HandlerOutput{Results: make([]records.Result, len(batch))}
	for i, r := range batch {
		if string(r.Data) == `"bad"` {
			out.Results[i] = records.Result{Status: records.StatusRetry, Message: "try later"}
		}
	}
	return out, nil
}

// A Kinesis event whose third record fails: the response names its
// sequence number, and Lambda retries from there.
func Example_partialBatchFailure() {
	c := &consumer{proc: records.JSONProcessor(), decode: true, handler: failOn{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	payload := []byte(`{"Records":[
		{"eventID":"shardId-000000000000:101","kinesis":{"sequenceNumber":"101","partitionKey":"a","data":"Im9rIg=="}},
		{"eventID":"shardId-000000000000:102","kinesis":{"sequenceNumber":"102","partitionKey":"b","data":"Im9rIg=="}},
		{"eventID":"shardId-000000000000:103","kinesis":{"sequenceNumber":"103","partitionKey":"c","data":"ImJhZCI="}},
		{"eventID":"shardId-000000000000:104","kinesis":{"sequenceNumber":"104","partitionKey":"d","data":"Im9rIg=="}}]}`)
	resp, err := kinesisInvoker{c}.Invoke(context.Background(), payload)
	fmt.Println(string(resp), err)
	// Output: {"batchItemFailures":[{"itemIdentifier":"103"}]} <nil>
}
