package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// testItem is what the consumer tests write as JSON.
type testItem struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	N   int    `json:"n"`
}

// putEntries writes entries with PutRecords (500 a call), retrying the
// entries a call did not take, and returns the sequence number of each
// entry by index.
func putEntries(t testing.TB, env *harness.Env, stream string, entries []types.PutRecordsRequestEntry) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seqs, err := tryPutEntries(ctx, env, stream, entries)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// tryPutEntries is putEntries for goroutines other than the test's.
func tryPutEntries(ctx context.Context, env *harness.Env, stream string, entries []types.PutRecordsRequestEntry) ([]string, error) {
	seqs := make([]string, len(entries))
	for lo := 0; lo < len(entries); lo += 500 {
		hi := min(lo+500, len(entries))
		idx := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		for attempt := 0; len(idx) > 0; attempt++ {
			if attempt == 20 {
				return nil, fmt.Errorf("put records: %d entries still failing after %d attempts", len(idx), attempt)
			}
			batch := make([]types.PutRecordsRequestEntry, len(idx))
			for j, i := range idx {
				batch[j] = entries[i]
			}
			out, err := env.Client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
			if err != nil {
				return nil, fmt.Errorf("put records to %s: %w", stream, err)
			}
			var retry []int
			for j, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, idx[j])
					continue
				}
				seqs[idx[j]] = aws.ToString(r.SequenceNumber)
			}
			idx = retry
		}
	}
	return seqs, nil
}

// jsonEntries makes n JSON records with ids prefix-0 … spread over keys
// partition keys; item i has N = i.
func jsonEntries(t testing.TB, prefix string, n, keys int) ([]types.PutRecordsRequestEntry, []testItem) {
	t.Helper()
	entries := make([]types.PutRecordsRequestEntry, n)
	items := make([]testItem, n)
	for i := range n {
		it := testItem{ID: fmt.Sprintf("%s-%d", prefix, i), Key: fmt.Sprintf("key-%d", i%keys), N: i}
		b, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		items[i] = it
		entries[i] = types.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(it.Key)}
	}
	return entries, items
}

// decodeItem turns a consumer record's decoded Value (a JSON object) back
// into a testItem.
func decodeItem(t testing.TB, rec shards.Record) testItem {
	t.Helper()
	var it testItem
	if err := json.Unmarshal(rec.Data, &it); err != nil {
		t.Fatalf("record %s/%s: %v", rec.ShardID, rec.SequenceNumber, err)
	}
	return it
}

// errorLog collects what a consumer reports to its error callback.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// fastOptions are timings short enough for tests.
func fastOptions() []shards.Option {
	return []shards.Option{
		shards.SleepWhenCaughtUp(50 * time.Millisecond),
		shards.ShardFetchRate(5),
		shards.LeaseInterval(100 * time.Millisecond),
		shards.ShardListInterval(500 * time.Millisecond),
		shards.CheckpointInterval(50 * time.Millisecond),
		shards.Backoff(10*time.Millisecond, 500*time.Millisecond),
		shards.ShutdownTimeout(10 * time.Second),
	}
}

func newConsumer(t testing.TB, env *harness.Env, stream string, opts ...shards.Option) *shards.Consumer {
	t.Helper()
	c, err := shards.New(env.Client, stream, append(fastOptions(), opts...)...)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	return c
}

// collectN reads records with the iterator until want records arrived, and
// returns them in delivery order.
func collectN(t testing.TB, ctx context.Context, c *shards.Consumer, want int) []shards.Record {
	t.Helper()
	var got []shards.Record
	if want == 0 {
		return nil
	}
	for rec, err := range c.Records(ctx) {
		if err != nil {
			t.Fatalf("records: %v", err)
		}
		got = append(got, rec)
		if len(got) == want {
			break
		}
	}
	if len(got) != want {
		t.Fatalf("got %d records before the iteration ended (%v), want %d", len(got), ctx.Err(), want)
	}
	return got
}

// seqLess orders Kinesis sequence numbers (decimal strings) numerically.
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
