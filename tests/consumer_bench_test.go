package tests

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
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

// BenchmarkConsumerReadLimit reads a backlog of 10 MiB per shard (2 shards,
// 50 KiB records) through the limits simulator (AWS read limits: 5 calls/s,
// 2 MiB/s per shard) and reports the read throughput per shard as a share
// of the 2 MiB/s limit (sustained, after the first call), and how many
// reads the simulator refused.
func BenchmarkConsumerReadLimit(b *testing.B) {
	env := harness.Kinesis(b)
	stream := env.NewStream(b, 2)
	const (
		recSize  = 50 << 10
		perShard = 200
	)
	shardsList, err := kinesisapi.ListShards(context.Background(), env.Client, stream)
	if err != nil {
		b.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := range 2 * perShard {
		s := shardsList[i%2]
		data := []byte(fmt.Sprintf("%08d", i) + strings.Repeat("r", recSize-8))
		entries = append(entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String("k"),
			ExplicitHashKey: aws.String(s.StartingHashKey.String())})
	}
	for lo := 0; lo < len(entries); lo += 50 { // PutRecords takes at most 5 MiB
		putEntries(b, env, stream, entries[lo:min(lo+50, len(entries))])
	}
	sim := simulator.Start(b, env.Endpoint, simulator.DefaultLimits())
	client, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	var perShardRate, throttled float64
	for b.Loop() {
		// Let the previous round's read debt drain from the simulator's
		// buckets (they hold one second of each limit).
		b.StopTimer()
		time.Sleep(1500 * time.Millisecond)
		b.StartTimer()
		before := sim.Stats(stream).Total.ThrottledReads
		c, err := shards.New(client, stream, shards.Processor(records.StringProcessor()),
			shards.ShardFetchRate(5), shards.RecordLimit(40), shards.SleepWhenCaughtUp(100*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		type arrival struct {
			at    time.Time
			bytes int
		}
		arrivals := map[string][]arrival{}
		n := 0
		for rec, err := range c.Records(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			arrivals[rec.ShardID] = append(arrivals[rec.ShardID], arrival{time.Now(), len(rec.Data) + len(rec.PartitionKey)})
			if n++; n == len(entries) {
				break
			}
		}
		cancel()
		if n != len(entries) {
			b.Fatalf("read %d of %d records", n, len(entries))
		}
		// The records of one GetRecords call arrive together. The
		// sustained rate is the bytes of every call but the last over the
		// time from the first call's records to the last call's.
		var sum float64
		for _, as := range arrivals {
			var bursts []arrival // start time and bytes of each call
			for i, a := range as {
				if i == 0 || a.at.Sub(as[i-1].at) > 100*time.Millisecond {
					bursts = append(bursts, arrival{a.at, 0})
				}
				bursts[len(bursts)-1].bytes += a.bytes
			}
			if len(bursts) < 2 {
				b.Fatalf("the backlog was read in %d call(s): nothing to measure", len(bursts))
			}
			var paced int
			for _, bu := range bursts[:len(bursts)-1] {
				paced += bu.bytes
			}
			sum += float64(paced) / bursts[len(bursts)-1].at.Sub(bursts[0].at).Seconds()
		}
		perShardRate += sum / float64(len(arrivals))
		throttled += float64(sim.Stats(stream).Total.ThrottledReads - before)
	}
	perShardRate /= float64(b.N)
	b.ReportMetric(perShardRate/(1<<20), "MiB/s/shard")
	b.ReportMetric(100*perShardRate/(2<<20), "%limit")
	b.ReportMetric(throttled/float64(b.N), "throttled-reads/op")
}

// BenchmarkConsumerLatency writes 20 records every 100 ms for 8 s through
// the limits simulator while a consumer with the default fetch rate (1/s)
// and caught-up sleep (2 s) reads them, and reports the put→deliver
// latency percentiles.
func BenchmarkConsumerLatency(b *testing.B) {
	env := harness.Kinesis(b)
	stream := env.NewStream(b, 2)
	sim := simulator.Start(b, env.Endpoint, simulator.DefaultLimits())
	client, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		ready := make(chan struct{}, 2)
		c, err := shards.New(client, stream, shards.StartAt(shards.Latest, time.Time{}), shards.Processor(records.StringProcessor()),
			shards.OnLease(func(ev shards.LeaseEvent) {
				if ev.Acquired {
					ready <- struct{}{}
				}
			}))
		if err != nil {
			b.Fatal(err)
		}
		const rounds, per = 80, 20
		putErr := make(chan error, 1)
		go func() {
			for range 2 {
				select {
				case <-ready:
				case <-ctx.Done():
					return
				}
			}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for r := range rounds {
				entries := make([]types.PutRecordsRequestEntry, per)
				now := time.Now().UnixNano()
				for i := range entries {
					entries[i] = types.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("%d", now)), PartitionKey: aws.String(fmt.Sprintf("k%d-%d", r, i))}
				}
				if _, err := tryPutEntries(ctx, env, stream, entries); err != nil {
					putErr <- err
					return
				}
				<-tick.C
			}
		}()
		n := 0
		for rec, err := range c.Records(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			var sent int64
			if _, err := fmt.Sscanf(string(rec.Data), "%d", &sent); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(time.Unix(0, sent)))
			if n++; n == rounds*per {
				break
			}
		}
		cancel()
		select {
		case err := <-putErr:
			b.Fatal(err)
		default:
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))].Seconds() }
	b.ReportMetric(pct(0.5), "p50-s")
	b.ReportMetric(pct(0.99), "p99-s")
}
