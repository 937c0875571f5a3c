package batch

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// stored is one Kinesis record as the fake keeps it.
type stored struct {
	pk   string
	data []byte
	at   time.Time
}

// fakeKinesis is an in-memory Kinesis for unit tests: one stream with equal
// hash-key ranges, optional per-shard write limits answered as Kinesis does,
// and hooks to fail entries or hold calls.
type fakeKinesis struct {
	kinesisapi.Client // unused methods panic

	mu         sync.Mutex
	stream     string
	exists     bool
	describes  int // DescribeStreamSummary calls while CREATING
	shards     []kinesisapi.Shard
	recs       map[string][]stored
	win        map[string]*limiter
	limRecords int // per shard per second; 0: none
	limBytes   int
	calls      []int // entries per call
	callBytes  []int
	listCalls  int
	// fail, when set, may return an error code for entry i of call n.
	fail func(call, i int, e types.PutRecordsRequestEntry) string
	// callErr, when set, may fail the whole call n.
	callErr func(call int) error
	// hold, when set, makes each call wait for a receive on it (or ctx).
	hold chan struct{}
	// latency delays every PutRecords call before the fake looks at it,
	// plus a random part up to jitter.
	latency, jitter time.Duration
	// discard keeps no records (benchmarks).
	discard bool
	// wrongShard reports every record on a shard id nobody predicted.
	wrongShard bool
}

func newFake(stream string, shards int) *fakeKinesis {
	f := &fakeKinesis{stream: stream, exists: true, recs: map[string][]stored{}, win: map[string]*limiter{}}
	f.setShards(shards)
	return f
}

func (f *fakeKinesis) setShards(n int) {
	f.shards = nil
	total := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(total, big.NewInt(int64(n)))
	for i := 0; i < n; i++ {
		var s kinesisapi.Shard
		s.ID = fmt.Sprintf("shardId-%012d", i)
		lo := new(big.Int).Mul(step, big.NewInt(int64(i)))
		hi := new(big.Int).Sub(new(big.Int).Add(lo, step), big.NewInt(1))
		if i == n-1 {
			hi = new(big.Int).Sub(total, big.NewInt(1))
		}
		lo.FillBytes(s.StartingHashKey[:])
		hi.FillBytes(s.EndingHashKey[:])
		f.shards = append(f.shards, s)
	}
}

func notFound(name string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Stream " + name + " not found")}
}

func (f *fakeKinesis) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists || aws.ToString(in.StreamName) != f.stream {
		return nil, notFound(aws.ToString(in.StreamName))
	}
	st := types.StreamStatusActive
	if f.describes > 0 {
		f.describes--
		st = types.StreamStatusCreating
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{
		StreamName: in.StreamName, StreamStatus: st, OpenShardCount: aws.Int32(int32(len(f.shards))),
	}}, nil
}

func (f *fakeKinesis) CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, _ ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exists {
		return nil, &types.ResourceInUseException{Message: aws.String("exists")}
	}
	f.exists, f.stream, f.describes = true, aws.ToString(in.StreamName), 2
	f.setShards(int(aws.ToInt32(in.ShardCount)))
	return &kinesis.CreateStreamOutput{}, nil
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	if !f.exists {
		return nil, notFound(aws.ToString(in.StreamName))
	}
	// Two shards a page, to exercise pagination.
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	out := &kinesis.ListShardsOutput{}
	for i := start; i < len(f.shards) && i < start+2; i++ {
		s := f.shards[i]
		out.Shards = append(out.Shards, types.Shard{
			ShardId: aws.String(s.ID),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(s.StartingHashKey.String()),
				EndingHashKey:   aws.String(s.EndingHashKey.String()),
			},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
	if start+2 < len(f.shards) {
		out.NextToken = aws.String(fmt.Sprint(start + 2))
	}
	return out, nil
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	lat := f.latency
	if f.jitter > 0 {
		lat += rand.N(f.jitter)
	}
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	call := len(f.calls)
	size := 0
	for _, e := range in.Records {
		size += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	f.calls = append(f.calls, len(in.Records))
	f.callBytes = append(f.callBytes, size)
	if !f.exists || aws.ToString(in.StreamName) != f.stream {
		return nil, notFound(aws.ToString(in.StreamName))
	}
	if len(in.Records) > MaxBatchRecords || size > MaxBatchBytes {
		return nil, errors.New("InvalidArgumentException: batch over the limits")
	}
	if f.callErr != nil {
		if err := f.callErr(call); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	m := kinesisapi.NewShardMap(f.shards)
	out := &kinesis.PutRecordsOutput{}
	failed := int32(0)
	for i, e := range in.Records {
		s, err := m.ShardFor(aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey))
		if err != nil {
			return nil, err
		}
		code := ""
		if f.fail != nil {
			code = f.fail(call, i, e)
		}
		sz := len(e.Data) + len(aws.ToString(e.PartitionKey))
		if code == "" && f.limRecords > 0 {
			w := f.win[s.ID]
			if w == nil {
				w = newLimiter(f.limRecords, f.limBytes)
				f.win[s.ID] = w
			}
			w.expire(now)
			if w.fits(0, 0, sz) {
				w.done(w.take(now, 1, sz), now)
			} else {
				code = "ProvisionedThroughputExceededException"
			}
		}
		if code != "" {
			failed++
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String(code + " for shard " + s.ID)})
			continue
		}
		if !f.discard {
			f.recs[s.ID] = append(f.recs[s.ID], stored{pk: aws.ToString(e.PartitionKey), data: e.Data, at: now})
		}
		id := s.ID
		if f.wrongShard {
			id = "shardId-elsewhere"
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(id), SequenceNumber: aws.String(fmt.Sprint(len(f.recs[s.ID])))})
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

// userRecords returns the stored records unpacked by the test aggregator,
// shard by shard in arrival order.
func (f *fakeKinesis) userRecords() []records.UserRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []records.UserRecord
	for _, s := range f.shards {
		for _, r := range f.recs[s.ID] {
			out = append(out, unpackLines(r.data)...)
		}
	}
	return out
}

func (f *fakeKinesis) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeKinesis) stored(shard string) []stored {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stored(nil), f.recs[shard]...)
}

// The test processor: strings; the "lines" aggregator packs records as
// lines "key\tdata\n" into one Kinesis record whose key is the first one's.
type stringSerializer struct{}

func (stringSerializer) Serialize(ctx context.Context, items []any) ([][]byte, error) {
	out := make([][]byte, len(items))
	var errs records.ItemErrors
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			errs = append(errs, records.ItemError{Index: i, Err: fmt.Errorf("not a string: %T", it)})
			continue
		}
		out[i] = []byte(s)
	}
	if errs != nil {
		return out, errs
	}
	return out, nil
}

func (stringSerializer) Deserialize(ctx context.Context, data [][]byte) ([]any, error) {
	out := make([]any, len(data))
	for i, d := range data {
		out[i] = string(d)
	}
	return out, nil
}

type linesAggregator struct{ perRecord bool }

func line(r records.UserRecord) int { return len(r.PartitionKey) + 1 + len(r.Data) + 1 }

func (a linesAggregator) Aggregate(ctx context.Context, in []records.UserRecord, maxSize int) ([]records.Aggregated, error) {
	var out []records.Aggregated
	var errs records.ItemErrors
	for i, r := range in {
		if a.SizeAlone(r) > maxSize {
			errs = append(errs, records.ItemError{Index: i, Err: records.ErrTooLarge})
			continue
		}
		if n := len(out); n > 0 && !a.perRecord && len(out[n-1].Data)+line(r)+len(out[n-1].PartitionKey) <= maxSize {
			out[n-1].Data = append(out[n-1].Data, r.PartitionKey+"\t"+string(r.Data)+"\n"...)
			out[n-1].Count++
			continue
		}
		out = append(out, records.Aggregated{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey,
			Data: []byte(r.PartitionKey + "\t" + string(r.Data) + "\n"), Count: 1})
	}
	if errs != nil {
		return out, errs
	}
	return out, nil
}

func (linesAggregator) Deaggregate(ctx context.Context, in []records.Record) ([]records.Record, error) {
	return nil, errors.New("not used")
}

func (linesAggregator) SizeAlone(r records.UserRecord) int { return line(r) + len(r.PartitionKey) }

func unpackLines(b []byte) []records.UserRecord {
	var out []records.UserRecord
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		k, d, _ := strings.Cut(strings.TrimSuffix(l, "\n"), "\t")
		out = append(out, records.UserRecord{PartitionKey: k, Data: []byte(d)})
	}
	return out
}

func testProcessor(aggregate bool) records.Processor {
	return records.Processor{Name: "test-lines", Serializer: stringSerializer{}, Aggregator: linesAggregator{perRecord: !aggregate}}
}
