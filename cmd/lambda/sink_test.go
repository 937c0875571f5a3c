package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// fakeKinesis is a one-shard stream that accepts PutRecords entries,
// refusing (throttling) the data listed in throttle that many times.
type fakeKinesis struct {
	kinesisapi.Client // methods the producer does not call panic

	mu       sync.Mutex
	put      [][]byte
	calls    int
	throttle map[string]int
}

func (f *fakeKinesis) DescribeStreamSummary(_ context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{
		StreamName: in.StreamName, StreamStatus: types.StreamStatusActive, OpenShardCount: aws.Int32(1)}}, nil
}

func (f *fakeKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{
		ShardId:             aws.String("shardId-000000000000"),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("340282366920938463463374607431768211455")},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
	}}}, nil
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	out := &kinesis.PutRecordsOutput{}
	for i, e := range in.Records {
		if f.throttle[string(e.Data)] > 0 {
			f.throttle[string(e.Data)]--
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("try again")})
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			continue
		}
		f.put = append(f.put, e.Data)
		out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: aws.String(strconv.Itoa(len(f.put) + i)), ShardId: aws.String("shardId-000000000000")})
	}
	return out, nil
}

func (f *fakeKinesis) putData() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.put {
		out = append(out, string(d))
	}
	return out
}

func newTestSink(t *testing.T, f *fakeKinesis, proc records.Processor, attempts int) *producerSink {
	t.Helper()
	s, err := newProducerSink(context.Background(), f, "s", proc, attempts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestProducerSinkRetriesThenDelivers(t *testing.T) {
	f := &fakeKinesis{throttle: map[string]int{"b": 2}}
	s := newTestSink(t, f, records.StringProcessor(), 5)
	recs := []records.UserRecord{{PartitionKey: "1", Data: []byte("a")}, {PartitionKey: "2", Data: []byte("b")}, {PartitionKey: "3", Data: []byte("c")}}
	if err := s.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	got := f.putData()
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("put %q", got)
	}
}

func TestProducerSinkNamesFailedInputs(t *testing.T) {
	f := &fakeKinesis{throttle: map[string]int{"b": 100, "d": 100}}
	s := newTestSink(t, f, records.StringProcessor(), 2)
	recs := []records.UserRecord{
		{PartitionKey: "1", Data: []byte("a")}, {PartitionKey: "2", Data: []byte("b")},
		{PartitionKey: "3", Data: []byte("c")}, {PartitionKey: "4", Data: []byte("d")},
		{PartitionKey: strings.Repeat("k", 300), Data: []byte("e")}, // invalid: key too long
	}
	err := s.Send(context.Background(), recs)
	ie, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		t.Fatal(batchErr)
	}
	var idx []int
	for _, e := range ie {
		idx = append(idx, e.Index)
	}
	if !slices.Equal(idx, []int{1, 3, 4}) {
		t.Fatalf("failed inputs %v (%v), want [1 3 4]", idx, err)
	}
	// The next Send starts clean.
	if err := s.Send(context.Background(), []records.UserRecord{{PartitionKey: "9", Data: []byte("z")}}); err != nil {
		t.Fatal(err)
	}
}

func TestProducerSinkFlushDeadline(t *testing.T) {
	f := &fakeKinesis{throttle: map[string]int{"slow": 1 << 30}}
	s, err := newProducerSink(context.Background(), f, "s", records.StringProcessor(), 100)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = s.Send(ctx, []records.UserRecord{{PartitionKey: "1", Data: []byte("slow")}, {PartitionKey: "2", Data: []byte("fast")}})
	ie, _ := records.SplitErrors(err)
	if len(ie) != 2 || !errors.Is(ie[0].Err, context.DeadlineExceeded) {
		t.Fatalf("err %v: want both records failed by the flush deadline", err)
	}
	if dl, _ := ctx.Deadline(); time.Until(dl) < flushMargin/2 {
		t.Errorf("the flush used the margin kept for answering")
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	_ = s.Close(cctx)
}
