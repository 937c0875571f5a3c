package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// sink delivers user records to a stream and waits until each one is either
// accepted by Kinesis or has failed for good.
type sink interface {
	// Send returns nil when every record was accepted, a records.ItemErrors
	// naming each failed input when some failed, and any other error when
	// none could be sent.
	Send(ctx context.Context, recs []records.UserRecord) error
}

// putClient is the part of the Kinesis client the stream writer uses.
type putClient interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// PutRecords limits.
const (
	maxPutEntries = 500
	maxPutBytes   = 5 << 20
)

// streamWriter aggregates user records per predicted shard with the
// processor's aggregator and sends them with PutRecords, retrying only the
// entries that failed, with capped, jittered exponential backoff. It is
// synchronous: Send returns when everything is delivered or has failed, so no
// goroutine outlives an invocation.
type streamWriter struct {
	client   putClient
	stream   string
	agg      records.Aggregator
	attempts int
	backoff  time.Duration // first retry delay; doubles, capped at 2s

	shards *kinesisapi.ShardMap // learnt on first use; nil: not known
}

func newStreamWriter(c putClient, stream string, agg records.Aggregator, attempts int) *streamWriter {
	return &streamWriter{client: c, stream: stream, agg: agg, attempts: attempts, backoff: 50 * time.Millisecond}
}

// shardMap lists the stream's shards once; with no map every record is
// aggregated with its neighbours regardless of shard.
func (w *streamWriter) shardMap(ctx context.Context) *kinesisapi.ShardMap {
	if w.shards != nil {
		return w.shards
	}
	list, err := kinesisapi.ListShards(ctx, listOnly{w.client}, w.stream)
	if err != nil || len(list) == 0 {
		return nil
	}
	w.shards = kinesisapi.NewShardMap(list)
	return w.shards
}

// listOnly adapts putClient to the kinesisapi.Client that ListShards takes;
// only ListShards is called.
type listOnly struct{ putClient }

func (listOnly) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return nil, errors.New("not used")
}
func (listOnly) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return nil, errors.New("not used")
}
func (listOnly) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return nil, errors.New("not used")
}
func (listOnly) CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return nil, errors.New("not used")
}

// entry is one Kinesis record to put and the inputs it carries.
type entry struct {
	rec    records.Aggregated
	inputs []int
}

// Send implements sink.
func (w *streamWriter) Send(ctx context.Context, recs []records.UserRecord) error {
	if len(recs) == 0 {
		return nil
	}
	var failed records.ItemErrors
	entries, err := w.aggregate(ctx, recs, &failed)
	if err != nil {
		return err
	}
	pending := make([]int, len(entries))
	for i := range pending {
		pending[i] = i
	}
	lastErr := make([]error, len(entries))
	delay := w.backoff
attempts:
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 {
			if attempt > w.attempts {
				break
			}
			d := delay/2 + rand.N(delay/2+1)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				for _, e := range pending {
					lastErr[e] = fmt.Errorf("%w (after %v)", ctx.Err(), lastErr[e])
				}
				break attempts
			case <-t.C:
			}
			delay = min(2*delay, 2*time.Second)
		}
		var retry []int
		for len(pending) > 0 {
			n, size := 0, 0
			for n < len(pending) && n < maxPutEntries {
				s := len(entries[pending[n]].rec.Data) + len(entries[pending[n]].rec.PartitionKey)
				if n > 0 && size+s > maxPutBytes {
					break
				}
				size += s
				n++
			}
			chunk := pending[:n]
			pending = pending[n:]
			in := &kinesis.PutRecordsInput{StreamName: aws.String(w.stream), Records: make([]types.PutRecordsRequestEntry, len(chunk))}
			for i, e := range chunk {
				r := entries[e].rec
				in.Records[i] = types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)}
				if r.ExplicitHashKey != "" {
					in.Records[i].ExplicitHashKey = aws.String(r.ExplicitHashKey)
				}
			}
			out, err := w.client.PutRecords(ctx, in)
			if err != nil {
				for _, e := range chunk {
					lastErr[e] = fmt.Errorf("put records to %s: %w", w.stream, err)
				}
				retry = append(retry, chunk...)
				continue
			}
			for i, r := range out.Records {
				if r.ErrorCode == nil || i >= len(chunk) {
					continue
				}
				lastErr[chunk[i]] = fmt.Errorf("put record to %s: %s: %s", w.stream, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
				retry = append(retry, chunk[i])
			}
			if len(out.Records) < len(chunk) {
				for _, e := range chunk[len(out.Records):] {
					lastErr[e] = fmt.Errorf("put records to %s: no result for the entry", w.stream)
					retry = append(retry, e)
				}
			}
		}
		pending = retry
	}
	for _, e := range pending {
		for _, i := range entries[e].inputs {
			failed = append(failed, records.ItemError{Index: i, Err: lastErr[e]})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sortItemErrors(failed)
	return failed
}

// aggregate packs recs into entries, grouped by predicted shard so that an
// aggregated record only holds user records of its own shard. Records the
// aggregator rejects are appended to failed.
func (w *streamWriter) aggregate(ctx context.Context, recs []records.UserRecord, failed *records.ItemErrors) ([]entry, error) {
	groups := [][]int{nil}
	if m := w.shardMap(ctx); m != nil && m.Len() > 1 {
		byShard := map[string]int{}
		groups = groups[:0]
		for i, r := range recs {
			s, err := m.ShardFor(r.PartitionKey, r.ExplicitHashKey)
			if err != nil {
				*failed = append(*failed, records.ItemError{Index: i, Err: err})
				continue
			}
			g, ok := byShard[s.ID]
			if !ok {
				g = len(groups)
				byShard[s.ID] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		}
	} else {
		groups[0] = make([]int, len(recs))
		for i := range recs {
			groups[0][i] = i
		}
	}
	var entries []entry
	for _, g := range groups {
		in := make([]records.UserRecord, len(g))
		for j, i := range g {
			in[j] = recs[i]
		}
		out, err := w.agg.Aggregate(ctx, in, records.MaxRecordSize)
		items, batchErr := records.SplitErrors(err)
		if batchErr != nil {
			return nil, fmt.Errorf("aggregate records for %s: %w", w.stream, batchErr)
		}
		bad := make(map[int]bool, len(items))
		for _, ie := range items {
			if ie.Index >= 0 && ie.Index < len(g) {
				bad[ie.Index] = true
				*failed = append(*failed, records.ItemError{Index: g[ie.Index], Err: ie.Err})
			}
		}
		next := 0
		for _, a := range out {
			e := entry{rec: a}
			for len(e.inputs) < a.Count && next < len(g) {
				if !bad[next] {
					e.inputs = append(e.inputs, g[next])
				}
				next++
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func sortItemErrors(es records.ItemErrors) {
	slices.SortStableFunc(es, func(a, b records.ItemError) int { return cmp.Compare(a.Index, b.Index) })
}
