package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

// event10k is the JSON of a 10,000-record Kinesis event, as Lambda hands it
// to the function.
func event10k(b *testing.B) []byte {
	var ev events.KinesisEvent
	for i := range 10000 {
		seq := fmt.Sprintf("4968056943603622115578351945410581400852494245066%08d", i)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			EventID: "shardId-000000000000:" + seq, EventSource: "aws:kinesis", EventName: "aws:kinesis:record",
			EventSourceArn: "arn:aws:kinesis:us-east-1:000000000000:stream/bench", AwsRegion: "us-east-1", EventVersion: "1.0",
			Kinesis: events.KinesisRecord{Data: fmt.Appendf(nil, `{"id":"r%d","level":"info","n":%d}`, i, i),
				PartitionKey: fmt.Sprint("key-", i%64), SequenceNumber: seq, KinesisSchemaVersion: "1.0",
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: time.Unix(1700000000, 0)}},
		})
	}
	p, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkConsumer10k is the function's own work for a 10,000-record
// event (what the emulator's Duration adds the runtime API transfer to):
// decoding the event JSON, deaggregation, decoding each record, the
// handler.
func BenchmarkConsumer10k(b *testing.B) {
	payload := event10k(b)
	for _, c := range []struct {
		name    string
		handler records.Handler
		decode  bool
	}{
		{"discard", discardHandler{}, false},
		{"decode-discard", discardHandler{}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			con := &consumer{proc: records.KPLJSONProcessor(), decode: c.decode, handler: c.handler, log: quiet}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			inv := kinesisInvoker{con}
			for b.Loop() {
				resp, err := inv.Invoke(context.Background(), payload)
				if err != nil || string(resp) != `{"batchItemFailures":null}` {
					b.Fatal(string(resp), err)
				}
			}
		})
	}
}
