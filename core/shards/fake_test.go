package shards_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeKinesis is an in-memory Kinesis for fast unit tests of the
// consumer's logic. Iterators are "shard/position".
type fakeKinesis struct {
	mu       sync.Mutex
	shards   []types.Shard
	data     map[string][][]byte // per shard, in order
	closed   map[string]bool
	pageSize int
	now      func() time.Time

	// Fault injection: called before each GetRecords; a non-nil error is
	// returned instead.
	fault func(shard string, call int) error
	calls map[string][]time.Time // GetRecords times per shard
	bytes map[string][]int       // bytes returned per call
}

func newFake(nShards int) *fakeKinesis {
	f := &fakeKinesis{data: map[string][][]byte{}, closed: map[string]bool{}, pageSize: 100, now: time.Now,
		calls: map[string][]time.Time{}, bytes: map[string][]int{}}
	for i := range nShards {
		f.addShard(fmt.Sprintf("shardId-%012d", i), "", "")
	}
	return f
}

func (f *fakeKinesis) addShard(id, parent, adjacent string) {
	s := types.Shard{
		ShardId:             aws.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("340282366920938463463374607431768211455")},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
	}
	if parent != "" {
		s.ParentShardId = aws.String(parent)
	}
	if adjacent != "" {
		s.AdjacentParentShardId = aws.String(adjacent)
	}
	f.shards = append(f.shards, s)
}

func (f *fakeKinesis) put(shard string, data ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[shard] = append(f.data[shard], data...)
}

func (f *fakeKinesis) close(shard string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed[shard] = true
	for i := range f.shards {
		if aws.ToString(f.shards[i].ShardId) == shard {
			f.shards[i].SequenceNumberRange.EndingSequenceNumber = aws.String("99999")
		}
	}
}

// seq numbers are 1-based positions, zero-padded so they compare as text.
func seqOf(pos int) string { return fmt.Sprintf("%020d", pos+1) }

func (f *fakeKinesis) PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return nil, errors.New("fake: PutRecords not supported")
}

func (f *fakeKinesis) CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return nil, errors.New("fake: CreateStream not supported")
}

func (f *fakeKinesis) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamName: in.StreamName, StreamStatus: types.StreamStatusActive}}, nil
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := 0
	if in.NextToken != nil {
		if in.StreamName != nil {
			return nil, errors.New("fake: StreamName with NextToken")
		}
		start, _ = strconv.Atoi(*in.NextToken)
	}
	const page = 100
	end := min(start+page, len(f.shards))
	out := &kinesis.ListShardsOutput{Shards: append([]types.Shard(nil), f.shards[start:end]...)}
	if end < len(f.shards) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	shard := aws.ToString(in.ShardId)
	pos := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		pos = len(f.data[shard])
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		n, err := strconv.Atoi(aws.ToString(in.StartingSequenceNumber))
		if err != nil {
			return nil, err
		}
		pos = n - 1
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
			pos++
		}
	default:
		return nil, fmt.Errorf("fake: iterator type %s", in.ShardIteratorType)
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", shard, pos))}, nil
}

func (f *fakeKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := aws.ToString(in.ShardIterator)
	i := strings.LastIndexByte(it, '/')
	shard := it[:i]
	pos, _ := strconv.Atoi(it[i+1:])
	f.calls[shard] = append(f.calls[shard], f.now())
	if f.fault != nil {
		if err := f.fault(shard, len(f.calls[shard])); err != nil {
			return nil, err
		}
	}
	limit := int(aws.ToInt32(in.Limit))
	data := f.data[shard]
	end := min(pos+limit, len(data), pos+f.pageSize)
	out := &kinesis.GetRecordsOutput{MillisBehindLatest: aws.Int64(0)}
	n := 0
	for p := pos; p < end; p++ {
		out.Records = append(out.Records, types.Record{
			Data: data[p], PartitionKey: aws.String("pk"), SequenceNumber: aws.String(seqOf(p)),
			ApproximateArrivalTimestamp: aws.Time(time.Unix(1700000000, 0)),
		})
		n += len(data[p]) + 2
	}
	f.bytes[shard] = append(f.bytes[shard], n)
	if end < len(data) {
		out.MillisBehindLatest = aws.Int64(1000)
	}
	if f.closed[shard] && end == len(data) {
		return out, nil // SHARD_END: no next iterator
	}
	out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", shard, end))
	return out, nil
}
