package tests

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	mathrand "math/rand"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
)

// simFixture is a stream behind the AWS-limits simulator.
type simFixture struct {
	env    *harness.Env
	sim    *simulator.Simulator
	client *kinesis.Client // through the simulator
	stream string
}

func newSimFixture(t testing.TB, shards int, limits simulator.Limits) *simFixture {
	t.Helper()
	env := harness.Kinesis(t)
	stream := env.NewStream(t, shards)
	sim := simulator.Start(t, env.Endpoint, limits)
	c, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return &simFixture{env: env, sim: sim, client: c, stream: stream}
}

// saturated is the outcome of runSaturated.
type saturated struct {
	elapsed time.Duration // first Put to the end of Close
	// lastSent is when the last PutRecords call started, from the first
	// Put: the producer's pacing without the last call's latency.
	lastSent time.Duration
	stats    batch.Stats
	items    []any
}

// runSaturated puts n string items of size bytes, spread evenly over the
// shards, as fast as the producer takes them, and closes the producer.
func runSaturated(t testing.TB, f *simFixture, n, size int, opts ...batch.Option) saturated {
	t.Helper()
	ctx := testCtx(t, 5*time.Minute)
	proc := records.StringProcessor()
	var mu sync.Mutex
	var last time.Time
	opts = append([]batch.Option{batch.WithProcessor(proc), batch.AfterFlush(func(fi batch.FlushInfo) {
		mu.Lock()
		if s := time.Now().Add(-fi.Duration); s.After(last) {
			last = s
		}
		mu.Unlock()
	})}, opts...)
	p, err := batch.Open(ctx, f.client, f.stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Record i goes to shard i mod shards, at a random hash key in its
	// range, so that every shard gets the same load and no key repeats.
	shards, err := kinesisapi.ListShards(ctx, f.client, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	open := kinesisapi.NewShardMap(shards).Shards()
	out := saturated{items: make([]any, n)}
	start := time.Now()
	for i := range out.items {
		s := open[i%len(open)]
		item := producerItem(proc.Name, i, size, "")
		out.items[i] = item
		r := records.UserRecord{Data: []byte(item.(string)), ExplicitHashKey: hashKeyIn(s).String()}
		if err := p.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	out.elapsed = time.Since(start)
	mu.Lock()
	out.lastSent = last.Sub(start)
	mu.Unlock()
	out.stats = p.Stats()
	return out
}

// TestProducerSimulatorStaysWithinLimit saturates one shard: the producer
// paces itself to the shard's limit with few throttles, and every record
// arrives.
func TestProducerSimulatorStaysWithinLimit(t *testing.T) {
	f := newSimFixture(t, 1, simulator.DefaultLimits())
	const n, size = 3000, 300
	r := runSaturated(t, f, n, size)
	ss := f.sim.Stats(f.stream).Total
	t.Logf("%d records in %v (last call at %v): %.0f records/s; simulator admitted %d, refused %d; producer %+v",
		n, r.elapsed, r.lastSent, float64(n)/r.elapsed.Seconds(), ss.AdmittedRecords, ss.RefusedRecords, r.stats)
	if ss.AdmittedRecords != n {
		t.Fatalf("simulator admitted %d records, want %d", ss.AdmittedRecords, n)
	}
	// The producer paces itself to the limit; the few throttles allowed
	// here come from calls that reach the simulator more than
	// 100 ms after they were sent, which happens on a loaded machine under
	// -race. BenchmarkProducerSimulator reports the fraction.
	if float64(ss.RefusedRecords) > 0.03*n {
		t.Fatalf("%d of %d entries throttled (more than 3%%)", ss.RefusedRecords, n)
	}
	// 3000 records at 1000 records/s: the last thousand cannot go before
	// two seconds.
	if r.lastSent < 2*time.Second {
		t.Fatalf("the last of %d records went at %v: faster than the shard limit", n, r.lastSent)
	}
	got, _ := readItems(t, f.env, f.stream, records.StringProcessor())
	checkSameItems(t, r.items, got, nil)
}

// TestProducerSimulatorScalesWithShards checks that a 4-shard stream takes
// at least 3 times what a 1-shard stream takes. Both the simulator and the
// producer use a limit of 100 records/s per shard, so that four shards
// stay well within what the machine running kinesalite can take (under
// -race, on shared cores). The rate is measured after the first second
// (whose burst both streams get at once) and up to the start of the last
// call, so that kinesalite's latency does not count.
func TestProducerSimulatorScalesWithShards(t *testing.T) {
	const perShard = 100
	limits := simulator.DefaultLimits()
	limits.WriteRecordsPerSec = perShard
	rate := map[int]float64{}
	for _, shards := range []int{1, 4} {
		f := newSimFixture(t, shards, limits)
		n := 5 * perShard * shards
		r := runSaturated(t, f, n, 100, batch.PutRateLimit(perShard))
		ss := f.sim.Stats(f.stream).Total
		if ss.AdmittedRecords != int64(n) || r.stats.Failed != 0 {
			t.Fatalf("%d shards: admitted %d of %d, failed %d", shards, ss.AdmittedRecords, n, r.stats.Failed)
		}
		rate[shards] = float64(n-perShard*shards) / r.lastSent.Seconds()
		t.Logf("%d shards: %.0f records/s after the first second (refused %d; end of Close at %v)", shards, rate[shards], ss.RefusedRecords, r.elapsed)
	}
	if r := rate[4] / rate[1]; r < 3 {
		t.Fatalf("4 shards took %.2fx the records/s of 1 shard; want >= 3x", r)
	}
}

// TestProducerSimulatorRetriesInjectedFailures delivers everything through
// injected InternalFailure and throttling entries.
func TestProducerSimulatorRetriesInjectedFailures(t *testing.T) {
	f := newSimFixture(t, 2, simulator.DefaultLimits())
	f.sim.InjectPutFailure(40, "InternalFailure")
	f.sim.InjectPutFailure(40, "ProvisionedThroughputExceededException")
	r := runSaturated(t, f, 500, 100, batch.Backoff(10*time.Millisecond, 200*time.Millisecond))
	st, elapsed, want := r.stats, r.elapsed, r.items
	if st.Retried < 80 || st.Throttled < 40 || st.Failed != 0 {
		t.Fatalf("stats after 80 injected failures: %+v", st)
	}
	t.Logf("delivered in %v with %d retries", elapsed, st.Retried)
	got, _ := readItems(t, f.env, f.stream, records.StringProcessor())
	checkSameItems(t, want, got, nil)
}

// TestProducerSimulatorUnrecoverable reports a record that keeps failing in
// Close's DeliveryError and the error callback, and delivers the rest.
func TestProducerSimulatorUnrecoverable(t *testing.T) {
	f := newSimFixture(t, 1, simulator.DefaultLimits())
	ctx := testCtx(t, time.Minute)
	var mu sync.Mutex
	var failed []batch.FailedRecord
	p, err := batch.Open(ctx, f.client, f.stream, batch.WithProcessor(records.StringProcessor()),
		batch.RetryLimit(2), batch.Backoff(time.Millisecond, 10*time.Millisecond),
		batch.ErrorCallback(func(fr batch.FailedRecord) { mu.Lock(); failed = append(failed, fr); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	f.sim.InjectPutFailure(3, "InternalFailure")
	if err := p.Put(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	var fe *batch.DeliveryError
	if err := p.Flush(ctx); !errors.As(err, &fe) || fe.Count != 1 || fe.Records[0].Item != "doomed" {
		t.Fatalf("Flush = %v, want a DeliveryError for the doomed record", err)
	}
	if err := p.Put(ctx, "fine"); err != nil {
		t.Fatal(err)
	}
	err = p.Close(ctx)
	var de *batch.DeliveryError
	if !errors.As(err, &de) || de.Count != 1 || de.Records[0].Item != "doomed" || de.Records[0].Attempts != 3 {
		t.Fatalf("Close = %v", err)
	}
	var ee *batch.EntryError
	if !errors.As(err, &ee) || ee.Code != "InternalFailure" {
		t.Fatalf("Close's error does not carry the entry error: %v", err)
	}
	if len(failed) != 1 || failed[0].Item != "doomed" {
		t.Fatalf("error callback got %v", failed)
	}
	got, _ := readItems(t, f.env, f.stream, records.StringProcessor())
	checkSameItems(t, []any{"fine"}, got, nil)
}

// TestProducerSimulatorSharedShard runs two producers on one shard, each
// believing it has the whole limit: throttling slows both, nothing is lost.
func TestProducerSimulatorSharedShard(t *testing.T) {
	f := newSimFixture(t, 1, simulator.DefaultLimits())
	const n = 3000
	var wg sync.WaitGroup
	wants := make([][]any, 2)
	stats := make([]batch.Stats, 2)
	errs := make([]error, 2)
	for w := range 2 {
		wg.Go(func() {
			ctx := testCtx(t, 3*time.Minute)
			p, err := batch.Open(ctx, f.client, f.stream, batch.WithProcessor(records.StringProcessor()), batch.RetryLimit(100))
			if err != nil {
				errs[w] = err
				return
			}
			for i := range n {
				key := fmt.Sprintf("w%d-%d", w, i%1000)
				item := producerItem(records.NameString, w*n+i, 100, key)
				wants[w] = append(wants[w], item)
				if err := p.PutWithKey(ctx, item, key); err != nil {
					errs[w] = err
					return
				}
			}
			errs[w] = p.Close(ctx)
			stats[w] = p.Stats()
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("producer %d: %v", w, err)
		}
	}
	ss := f.sim.Stats(f.stream).Total
	t.Logf("admitted %d, refused %d; throttled %d and %d", ss.AdmittedRecords, ss.RefusedRecords, stats[0].Throttled, stats[1].Throttled)
	got, _ := readItems(t, f.env, f.stream, records.StringProcessor())
	checkSameItems(t, append(wants[0], wants[1]...), got, itemKey)
}

// BenchmarkProducerSimulator saturates a 1-shard and a 4-shard stream
// behind the simulator with 500-byte records, and reports for each the
// fraction of the write limit achieved after the first second's burst:
// limit-frac = (records − one second's worth) / elapsed / limit, with
// elapsed from the first Put to the end of Close; sent-frac the same up to
// the start of the last PutRecords call, which leaves out kinesalite's
// latency. Also the fraction of entries throttled and the 4-shard to
// 1-shard throughput ratio (on sent time). It runs with the AWS limits
// (1000 records/s per shard) and with 200 records/s per shard, which a
// loaded machine's kinesalite can serve for four shards.
func BenchmarkProducerSimulator(b *testing.B) {
	const size = 500
	for _, perShard := range []int{1000, 200} {
		b.Run(fmt.Sprintf("limit=%drps", perShard), func(b *testing.B) {
			limits := simulator.DefaultLimits()
			limits.WriteRecordsPerSec = float64(perShard)
			for b.Loop() {
				rate := map[int]float64{}
				for _, shards := range []int{1, 4} {
					f := newSimFixture(b, shards, limits)
					n := 4 * perShard * shards
					r := runSaturated(b, f, n, size, batch.PutRateLimit(perShard))
					ss := f.sim.Stats(f.stream).Total
					if ss.AdmittedRecords != int64(n) {
						b.Fatalf("%d shards: admitted %d of %d", shards, ss.AdmittedRecords, n)
					}
					limit := float64(perShard * shards)
					after := float64(n) - limit
					rate[shards] = after / r.lastSent.Seconds()
					b.ReportMetric(after/r.elapsed.Seconds()/limit, fmt.Sprintf("limit-frac-%dshard", shards))
					b.ReportMetric(after/r.lastSent.Seconds()/limit, fmt.Sprintf("sent-frac-%dshard", shards))
					b.ReportMetric(float64(ss.RefusedRecords)/float64(ss.AdmittedRecords+ss.RefusedRecords), fmt.Sprintf("throttled-frac-%dshard", shards))
				}
				b.ReportMetric(rate[4]/rate[1], "ratio-4:1")
			}
		})
	}
}

// hashKeyIn is a random hash key in the shard's range.
func hashKeyIn(s kinesisapi.Shard) kinesisapi.HashKey {
	lo := new(big.Int).SetBytes(s.StartingHashKey[:])
	span := new(big.Int).Sub(new(big.Int).SetBytes(s.EndingHashKey[:]), lo)
	n := new(big.Int).Add(lo, new(big.Int).Rand(rng, new(big.Int).Add(span, big.NewInt(1))))
	var h kinesisapi.HashKey
	n.FillBytes(h[:])
	return h
}

var rng = mathrand.New(mathrand.NewSource(1))
