package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

// viaJSON is what the consumer reads from payload through encoding/json.
func viaJSON(payload []byte) ([]records.Record, error) {
	var ev events.KinesisEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	out := make([]records.Record, len(ev.Records))
	for i, r := range ev.Records {
		out[i] = kinesisRecord(r)
	}
	return out, nil
}

func sameRecords(a, b []records.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !bytes.Equal(x.Data, y.Data) || x.PartitionKey != y.PartitionKey || x.ShardID != y.ShardID ||
			x.SequenceNumber != y.SequenceNumber || !x.ArrivalTime.Equal(y.ArrivalTime) {
			return false
		}
	}
	return true
}

const sampleEvent = `{
  "Records": [
    {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1", "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
       "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==", "approximateArrivalTimestamp": 1545084650.987, "encryptionType": "NONE"},
     "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
     "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
     "awsRegion": "us-east-2", "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"},
    {"kinesis": {"partitionKey": "ключ", "sequenceNumber": "2", "data": "", "approximateArrivalTimestamp": 1e9},
     "eventID": "shardId-000000000006:2", "extra": {"a": [1, -2.5e-3, true, false, null, "x\"\\\u00e9"]}}
  ]
}`

func TestParseKinesisEvent(t *testing.T) {
	want, err := viaJSON([]byte(sampleEvent))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := parseKinesisEvent([]byte(sampleEvent))
	if !ok {
		t.Fatal("the fast path refused a plain event")
	}
	if !sameRecords(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if string(got[0].Data) != "Hello, this is a test." || got[0].ShardID != "shardId-000000000006" || got[1].PartitionKey != "ключ" ||
		!got[1].ArrivalTime.Equal(time.Unix(1e9, 0)) {
		t.Errorf("records %+v", got)
	}
	// What the fast path hands to encoding/json instead.
	for _, p := range []string{
		`{"Records":[{"kinesis":{"partitionKey":"a\u00e9"}}]}`, // escape in a field it reads
		`{"records":[]}`,                          // matched by encoding/json case-insensitively
		`{"Records":[{"Kinesis":{}}]}`,            // likewise
		`{"Records":null}`,                        // null
		`{"Records":[{"kinesis":{"data":"!!"}}]}`, // bad base64: encoding/json reports it
		`{"Records":[]} x`,                        // trailing garbage
		`{"Records":[{"x":tru}]}`,                 // bad literal
		`{"Records":[{"x":01}]}`,                  // bad number
	} {
		if _, ok := parseKinesisEvent([]byte(p)); ok {
			t.Errorf("fast path accepted %s", p)
		}
	}
}

// FuzzParseKinesisEvent: whenever the fast path accepts a payload,
// encoding/json accepts it too and reads the same records.
func FuzzParseKinesisEvent(f *testing.F) {
	f.Add([]byte(sampleEvent))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"Records":[{"eventID":"s:1","kinesis":{"data":"YQ==","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":1.5}}]}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		got, ok := parseKinesisEvent(p)
		if !ok {
			return
		}
		want, err := viaJSON(p)
		if err != nil {
			// Accepted only where encoding/json fails on a field the
			// consumer does not read (a number where a string is typed).
			if !json.Valid(p) {
				t.Fatalf("fast path accepted invalid JSON %q", p)
			}
			return
		}
		if !sameRecords(got, want) {
			t.Fatalf("%q:\nfast %+v\njson %+v", p, got, want)
		}
	})
}
