package tests

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

const (
	benchItems    = 20000
	benchItemSize = 200
	benchShards   = 4
)

// benchStream is a stream filled once per processor for the consumer
// benchmarks: 20,000 items of about 200 bytes over 4 shards.
type benchStream struct {
	name      string
	userCount int // user records a consumer delivers
	bytes     int // Kinesis record bytes
	err       error
}

var (
	benchMu      sync.Mutex
	benchStreams = map[string]*benchStream{}
)

func benchItem(proc string, i int) any {
	if strings.Contains(proc, "string") {
		s := fmt.Sprintf("item-%08d-", i)
		return s + strings.Repeat("x", benchItemSize-len(s))
	}
	m := map[string]any{"id": i, "pad": ""}
	m["pad"] = strings.Repeat("x", benchItemSize-len(fmt.Sprintf(`{"id":%d,"pad":""}`, i)))
	return m
}

func fillBenchStream(b *testing.B, env *harness.Env, p records.Processor) *benchStream {
	benchMu.Lock()
	defer benchMu.Unlock()
	if s, ok := benchStreams[p.Name]; ok {
		return s
	}
	s := &benchStream{name: harness.UniqueName(b) + "-" + p.Name}
	benchStreams[p.Name] = s
	ctx := context.Background()
	if s.err = harness.CreateStream(ctx, env.Client, s.name, benchShards); s.err != nil {
		return s
	}
	// Aggregating processors pack groups of 500 items under one partition
	// key; groups rotate over keys so the shards share the load.
	const group = 500
	var entries []types.PutRecordsRequestEntry
	for lo := 0; lo < benchItems; lo += group {
		items := make([]any, 0, group)
		for i := lo; i < min(lo+group, benchItems); i++ {
			items = append(items, benchItem(p.Name, i))
		}
		data, err := p.Serializer.Serialize(ctx, items)
		if err != nil {
			s.err = err
			return s
		}
		urs := make([]records.UserRecord, len(data))
		for i, d := range data {
			urs[i] = records.UserRecord{PartitionKey: fmt.Sprintf("key-%d", (lo+i)%64), Data: d}
		}
		aggs, err := p.Aggregator.Aggregate(ctx, urs, records.MaxRecordSize)
		if err != nil {
			s.err = err
			return s
		}
		for _, a := range aggs {
			e := types.PutRecordsRequestEntry{Data: a.Data, PartitionKey: aws.String(a.PartitionKey)}
			if a.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(a.ExplicitHashKey)
			}
			entries = append(entries, e)
			s.bytes += len(a.Data) + len(a.PartitionKey)
			recs, err := p.Aggregator.Deaggregate(ctx, []records.Record{{Data: a.Data, PartitionKey: a.PartitionKey, SequenceNumber: "1"}})
			if err != nil {
				s.err = err
				return s
			}
			s.userCount += len(recs)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, s.err = tryPutEntries(pctx, env, s.name, entries)
	return s
}

// BenchmarkConsumerKinesalite reads 20,000 items of 200 B from 4 shards of
// kinesalite with each native processor, from TRIM_HORIZON, through the
// iterator (decoding every item), within the per-shard limits (5 reads/s,
// 2 MiB/s).
func BenchmarkConsumerKinesalite(b *testing.B) {
	env := harness.Kinesis(b)
	for _, name := range records.Names() {
		b.Run(name, func(b *testing.B) {
			p, err := records.ByName(name)
			if err != nil {
				b.Fatal(err)
			}
			s := fillBenchStream(b, env, p)
			if s.err != nil {
				b.Fatal(s.err)
			}
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			for b.Loop() {
				c, err := shards.New(env.Client, s.name, shards.Processor(p), shards.ShardFetchRate(5),
					shards.SleepWhenCaughtUp(100*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				n := 0
				for rec, err := range c.Records(ctx) {
					if err != nil {
						b.Fatal(err)
					}
					if rec.Value == nil {
						b.Fatalf("record %s not decoded", rec.SequenceNumber)
					}
					if n++; n == s.userCount {
						break
					}
				}
				cancel()
				if n != s.userCount {
					b.Fatalf("read %d of %d records", n, s.userCount)
				}
			}
			elapsed := time.Since(start).Seconds()
			runtime.ReadMemStats(&ms1)
			total := float64(b.N * s.userCount)
			b.ReportMetric(total/elapsed, "records/s")
			b.ReportMetric(float64(b.N*s.bytes)/elapsed/1e6, "MB/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/total, "allocs/record")
		})
	}
}
