package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
)

// fakeKinesis accepts PutRecords entries, throttling the data listed in
// throttle the given number of times, and failing calls while callErr > 0.
type fakeKinesis struct {
	mu       sync.Mutex
	put      [][]byte
	calls    int
	throttle map[string]int
	callErr  int
	shards   int
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(in.Records) > maxPutEntries {
		return nil, errors.New("too many entries")
	}
	if f.callErr > 0 {
		f.callErr--
		return nil, errors.New("connection reset")
	}
	out := &kinesis.PutRecordsOutput{}
	for i, e := range in.Records {
		if f.throttle[string(e.Data)] > 0 {
			f.throttle[string(e.Data)]--
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow down")})
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			continue
		}
		f.put = append(f.put, e.Data)
		out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: aws.String(strconv.Itoa(i)), ShardId: aws.String("shardId-000000000000")})
	}
	return out, nil
}

func (f *fakeKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return nil, errors.New("not supported")
}

func TestStreamWriterRetriesOnlyFailedEntries(t *testing.T) {
	f := &fakeKinesis{throttle: map[string]int{"b": 2}, callErr: 1}
	w := newStreamWriter(f, "s", records.SimpleAggregator{}, 5)
	w.backoff = 1
	recs := []records.UserRecord{{PartitionKey: "1", Data: []byte("a")}, {PartitionKey: "2", Data: []byte("b")}, {PartitionKey: "3", Data: []byte("c")}}
	if err := w.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range f.put {
		got = append(got, string(d))
	}
	if !slices.Equal(got, []string{"a", "c", "b"}) || f.calls != 4 {
		t.Errorf("put %q in %d calls, want a c then b in 4 calls", got, f.calls)
	}
}

func TestStreamWriterGivesUpPerRecord(t *testing.T) {
	f := &fakeKinesis{throttle: map[string]int{"b": 100}}
	w := newStreamWriter(f, "s", records.SimpleAggregator{}, 3)
	w.backoff = 1
	recs := []records.UserRecord{{PartitionKey: "1", Data: []byte("a")}, {PartitionKey: "2", Data: []byte("b")}}
	err := w.Send(context.Background(), recs)
	ie, batch := records.SplitErrors(err)
	if batch != nil || len(ie) != 1 || ie[0].Index != 1 || f.calls != 3 {
		t.Fatalf("err %v after %d calls; want record 1 failed after 3 calls", err, f.calls)
	}
}

func TestStreamWriterAggregatedFailureFailsEveryInput(t *testing.T) {
	f := &fakeKinesis{callErr: 100}
	w := newStreamWriter(f, "s", records.KPLAggregator{}, 2)
	w.backoff = 1
	recs := make([]records.UserRecord, 700)
	for i := range recs {
		recs[i] = records.UserRecord{PartitionKey: "k", Data: []byte(strconv.Itoa(i))}
	}
	ie, batch := records.SplitErrors(w.Send(context.Background(), recs))
	if batch != nil || len(ie) != 700 || ie[0].Index != 0 || ie[699].Index != 699 {
		t.Fatalf("%d item errors, batch %v", len(ie), batch)
	}
	// Aggregated: 700 user records fit one Kinesis record, so 2 calls.
	if f.calls != 2 {
		t.Errorf("%d calls, want 2", f.calls)
	}
}

func TestStreamWriterChunks(t *testing.T) {
	f := &fakeKinesis{}
	w := newStreamWriter(f, "s", records.SimpleAggregator{}, 1)
	recs := make([]records.UserRecord, 1201)
	for i := range recs {
		recs[i] = records.UserRecord{PartitionKey: "k", Data: []byte(strconv.Itoa(i))}
	}
	if err := w.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if f.calls != 3 || len(f.put) != 1201 || string(f.put[1200]) != "1200" {
		t.Errorf("%d calls, %d records", f.calls, len(f.put))
	}
}
