package tests

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// countingClient counts the Kinesis calls a consumer makes.
type countingClient struct {
	kinesisapi.Client
	describe, getRecords atomic.Int64
}

func (c *countingClient) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, o ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	c.describe.Add(1)
	return c.Client.DescribeStreamSummary(ctx, in, o...)
}

func (c *countingClient) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	c.getRecords.Add(1)
	return c.Client.GetRecords(ctx, in, o...)
}

// Seed acceptance case 8: a missing stream is a clear error at once, with
// no reconnect loop.
func TestConsumerMissingStreamIsAnError(t *testing.T) {
	env := harness.Kinesis(t)
	name := harness.UniqueName(t)
	cc := &countingClient{Client: env.Client}
	c, err := shards.New(cc, name, fastOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	for _, err := range c.Records(ctx) {
		n++
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("Records yielded %v, want a ResourceNotFoundException", err)
		}
	}
	if n != 1 {
		t.Fatalf("Records yielded %d elements, want exactly the error", n)
	}
	err = c.Run(ctx, handlerFunc(func(context.Context, []records.Record) (records.HandlerOutput, error) {
		t.Error("handler called for a missing stream")
		return records.HandlerOutput{}, nil
	}))
	if !kinesisapi.IsNotFound(err) {
		t.Fatalf("Run returned %v, want not found", err)
	}
	if got := cc.describe.Load(); got != 2 {
		t.Fatalf("%d DescribeStreamSummary calls for two starts, want 2 (no retry loop)", got)
	}
}

// Seed acceptance case 8 and defect "a record that fails to decode causes
// duplicates, then fetching stops": a poison record among good ones is
// reported with its sequence number and the shard moves on.
func TestConsumerPoisonRecordIsReportedAndSkipped(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	good1, items1 := jsonEntries(t, "g1", 30, 3)
	good2, items2 := jsonEntries(t, "g2", 30, 3)
	poison := types.PutRecordsRequestEntry{Data: []byte(`{"id": broken`), PartitionKey: aws.String("key-0")}
	entries := append(append(good1, poison), good2...)
	seqs := putEntries(t, env, stream, entries)
	poisonSeq := seqs[len(good1)]

	var errs errorLog
	c := newConsumer(t, env, stream, shards.ErrorCallback(errs.add))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := collectN(t, ctx, c, len(items1)+len(items2))
	want := append(items1, items2...)
	for i, rec := range got {
		if it := decodeItem(t, rec); it != want[i] {
			t.Fatalf("record %d = %+v, want %+v", i, it, want[i])
		}
	}
	var decodeErrs []*shards.RecordError
	for _, err := range errs.all() {
		var re *shards.RecordError
		if errors.As(err, &re) && errors.Is(err, shards.ErrDecode) {
			decodeErrs = append(decodeErrs, re)
		}
	}
	if len(decodeErrs) != 1 || decodeErrs[0].SequenceNumber != poisonSeq || decodeErrs[0].ShardID != "shardId-000000000000" {
		t.Fatalf("decode errors %v, want one for %s", decodeErrs, poisonSeq)
	}
	if s := c.Stats(); s.DecodeErrors != 1 {
		t.Fatalf("stats count %d decode errors, want 1", s.DecodeErrors)
	}
	// The poison record counts as finished: the checkpoint passed it.
	cp, err := c.Store().Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if cp.SequenceNumber != seqs[len(seqs)-1] || !cp.Complete {
		t.Fatalf("final checkpoint %+v, want complete at %s", cp, seqs[len(seqs)-1])
	}
}

// Seed acceptance case 8 and defect "a full queue drops the rest of a
// batch but advances the iterator": with a tiny queue every record still
// arrives once, in order.
func TestConsumerFullQueueLosesNothing(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	entries, items := jsonEntries(t, "q", 700, 7)
	putEntries(t, env, stream, entries)
	c := newConsumer(t, env, stream, shards.MaxQueueSize(3), shards.RecordLimit(250))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := collectN(t, ctx, c, len(items))
	for i, rec := range got {
		if it := decodeItem(t, rec); it != items[i] {
			t.Fatalf("record %d = %+v, want %+v", i, it, items[i])
		}
	}
}

// Seed acceptance case 7: with a fetch limit of 10 records and 2 fetches/s
// for 3 s, 50–70 records arrive.
func TestConsumerFetchRateLimit(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	entries, _ := jsonEntries(t, "t", 300, 3)
	putEntries(t, env, stream, entries)
	cc := &countingClient{Client: env.Client}
	c, err := shards.New(cc, stream, shards.RecordLimit(10), shards.ShardFetchRate(2), shards.SleepWhenCaughtUp(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n := 0
	for _, err := range c.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 50 || n > 70 {
		t.Fatalf("%d records in 3 s at 10 records × 2 fetches/s, want 50–70 (%d GetRecords calls)", n, cc.getRecords.Load())
	}
}

type handlerFunc func(context.Context, []records.Record) (records.HandlerOutput, error)

func (f handlerFunc) Handle(ctx context.Context, b []records.Record) (records.HandlerOutput, error) {
	return f(ctx, b)
}

// Run: per-record statuses. RETRY is delivered again, FAIL goes to the
// error callback and counts as finished, SKIP finishes, a batch error
// retries the batch.
func TestConsumerRunStatuses(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	entries, items := jsonEntries(t, "s", 200, 4)
	seqs := putEntries(t, env, stream, entries)

	var errs errorLog
	c := newConsumer(t, env, stream, shards.ErrorCallback(errs.add), shards.MaxBatchSize(32))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attempts := map[int]int{}
	finished := map[int]bool{}
	batchErrorsLeft := 2
	err := c.Run(ctx, handlerFunc(func(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
		if batchErrorsLeft > 0 {
			batchErrorsLeft--
			return records.HandlerOutput{}, errors.New("transient handler failure")
		}
		out := records.HandlerOutput{Results: make([]records.Result, len(batch))}
		for i, r := range batch {
			var it testItem
			if err := json.Unmarshal(r.Data, &it); err != nil {
				t.Errorf("bad record data: %v", err)
			}
			attempts[it.N]++
			switch {
			case it.N%10 == 3 && attempts[it.N] < 3:
				out.Results[i] = records.Result{Status: records.StatusRetry}
				continue
			case it.N%10 == 7:
				out.Results[i] = records.Result{Status: records.StatusFail, Message: "seven"}
			case it.N%10 == 9:
				out.Results[i] = records.Result{Status: records.StatusSkip}
			}
			if finished[it.N] {
				t.Errorf("record %d finished twice", it.N)
			}
			finished[it.N] = true
		}
		if len(finished) == len(items) {
			cancel()
		}
		return out, nil
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	for _, it := range items {
		want := 1
		if it.N%10 == 3 {
			want = 3
		}
		if attempts[it.N] != want {
			t.Fatalf("record %d handled %d times, want %d", it.N, attempts[it.N], want)
		}
	}
	var failedSeqs []string
	batchErrs := 0
	for _, err := range errs.all() {
		var re *shards.RecordError
		switch {
		case errors.As(err, &re) && errors.Is(err, shards.ErrHandlerFailed):
			failedSeqs = append(failedSeqs, re.SequenceNumber)
		default:
			batchErrs++
		}
	}
	var wantFailed []string
	for _, it := range items {
		if it.N%10 == 7 {
			wantFailed = append(wantFailed, seqs[it.N])
		}
	}
	if !equalSets(failedSeqs, wantFailed) {
		t.Fatalf("failed records reported %v, want %v", failedSeqs, wantFailed)
	}
	if batchErrs != 2 {
		t.Fatalf("%d batch errors reported, want 2", batchErrs)
	}
	cp, err := c.Store().Get(context.Background(), "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if cp.SequenceNumber != seqs[len(seqs)-1] || !cp.Complete {
		t.Fatalf("final checkpoint %+v, want complete at the last record %s", cp, seqs[len(seqs)-1])
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
