package simulator_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
)

func TestMain(m *testing.M) { harness.Main(m) }

// fixture is a stream behind a simulator with a client for each.
type fixture struct {
	env    *harness.Env
	sim    *simulator.Simulator
	client *kinesis.Client // through the simulator
	stream string
	clock  *simulator.FakeClock
}

func newFixture(t *testing.T, shards int, limits simulator.Limits) *fixture {
	t.Helper()
	env := harness.Kinesis(t)
	stream := env.NewStream(t, shards)
	clock := simulator.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sim := simulator.Start(t, env.Endpoint, limits, simulator.WithClock(clock))
	c, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, sim: sim, client: c, stream: stream, clock: clock}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// entries makes n entries with unique data of size bytes (at least 12).
func entries(prefix string, n, size int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		d := fmt.Sprintf("%s-%08d-", prefix, i)
		if len(d) < size {
			d += strings.Repeat("x", size-len(d))
		}
		out[i] = types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String(fmt.Sprintf("pk-%d", i))}
	}
	return out
}

// put sends entries and returns the data of the admitted ones, checking that
// every refused entry carries the AWS throttling error.
func put(t *testing.T, f *fixture, es []types.PutRecordsRequestEntry) (admitted []string, refused int) {
	t.Helper()
	out, err := f.client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: es})
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if len(out.Records) != len(es) {
		t.Fatalf("PutRecords returned %d results for %d entries", len(out.Records), len(es))
	}
	for i, r := range out.Records {
		if r.ErrorCode == nil {
			if r.SequenceNumber == nil || r.ShardId == nil {
				t.Fatalf("entry %d: admitted without sequence number or shard id", i)
			}
			admitted = append(admitted, string(es[i].Data))
			continue
		}
		if *r.ErrorCode != "ProvisionedThroughputExceededException" {
			t.Fatalf("entry %d: ErrorCode %q, want ProvisionedThroughputExceededException", i, *r.ErrorCode)
		}
		if !strings.Contains(aws.ToString(r.ErrorMessage), "Rate exceeded for shard") {
			t.Fatalf("entry %d: ErrorMessage %q", i, aws.ToString(r.ErrorMessage))
		}
		refused++
	}
	if got := int(aws.ToInt32(out.FailedRecordCount)); got != refused {
		t.Fatalf("FailedRecordCount = %d, counted %d failed entries", got, refused)
	}
	return admitted, refused
}

// stored returns the data of every record kinesalite holds for the stream,
// read directly (not through the simulator).
func stored(t *testing.T, f *fixture) map[string]int {
	t.Helper()
	recs, err := f.env.ReadAll(ctxT(t), f.stream)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.Data)]++
	}
	return m
}

func sameSet(t *testing.T, admitted []string, stored map[string]int) {
	t.Helper()
	if len(stored) != len(admitted) {
		t.Fatalf("kinesalite holds %d distinct records, the simulator admitted %d", len(stored), len(admitted))
	}
	for _, d := range admitted {
		if stored[d] != 1 {
			t.Fatalf("admitted record %.20q stored %d times", d, stored[d])
		}
	}
}

func TestPutRecordsRecordLimitOneShard(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	var admitted []string
	refused := 0
	// The clock stands still: one second's worth of records is admitted.
	for call := range 4 {
		a, r := put(t, f, entries(fmt.Sprintf("w0c%d", call), 400, 100))
		admitted, refused = append(admitted, a...), refused+r
	}
	if len(admitted) != 1000 || refused != 600 {
		t.Fatalf("frozen window: admitted %d refused %d, want 1000 and 600", len(admitted), refused)
	}
	// Half a second later, half a second's worth more.
	f.clock.Advance(500 * time.Millisecond)
	a, r := put(t, f, entries("w1", 500, 100))
	if len(a) != 500 || r != 0 {
		t.Fatalf("after 500ms: admitted %d refused %d, want 500 and 0", len(a), r)
	}
	admitted = append(admitted, a...)
	a, r = put(t, f, entries("w1b", 10, 100))
	if len(a) != 0 || r != 10 {
		t.Fatalf("bucket empty again: admitted %d refused %d, want 0 and 10", len(a), r)
	}
	refused += r

	st := f.sim.Stats(f.stream)
	if len(st.Shards) != 1 || st.Shards[0].ShardID != "shardId-000000000000" {
		t.Fatalf("stats shards = %+v", st.Shards)
	}
	if st.Total.AdmittedRecords != int64(len(admitted)) || st.Total.RefusedRecords != int64(refused) {
		t.Fatalf("stats admitted %d refused %d, counted %d and %d",
			st.Total.AdmittedRecords, st.Total.RefusedRecords, len(admitted), refused)
	}
	if st.Total.Mispredicted != 0 {
		t.Fatalf("mispredicted %d", st.Total.Mispredicted)
	}
	sameSet(t, admitted, stored(t, f))
}

func TestPutRecordsByteLimitOneShard(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	const size = 64 << 10
	es := entries("big", 40, size) // 2.5 MiB, within the 5 MiB request limit
	per := size + len("pk-00")     // partition keys pk-10..pk-39 are 5 bytes
	admitted, refused := put(t, f, es)
	// Admitted bytes never exceed one second's worth and the next entry would.
	st := f.sim.Stats(f.stream).Total
	if st.AdmittedBytes > simulator.MiB || st.AdmittedBytes+int64(per) <= simulator.MiB {
		t.Fatalf("admitted %d bytes in a frozen window, limit %d", st.AdmittedBytes, simulator.MiB)
	}
	if int(st.AdmittedRecords) != len(admitted) || int(st.RefusedRecords) != refused || refused == 0 {
		t.Fatalf("stats %+v, counted admitted %d refused %d", st, len(admitted), refused)
	}
	var sum int64
	for i, e := range es[:len(admitted)] {
		sum += int64(len(e.Data) + len(*e.PartitionKey))
		if string(e.Data) != admitted[i] {
			t.Fatalf("admitted entries are not a prefix: entry %d", i)
		}
	}
	if sum != st.AdmittedBytes || st.RefusedBytes != int64(refused*per) {
		t.Fatalf("admitted bytes %d, entries hold %d", st.AdmittedBytes, sum)
	}
	sameSet(t, admitted, stored(t, f))
}

func TestPutRecordsRealClockHammer(t *testing.T) {
	env := harness.Kinesis(t)
	stream := env.NewStream(t, 1)
	limits := simulator.DefaultLimits()
	limits.WriteRecordsPerSec = 400
	sim := simulator.Start(t, env.Endpoint, limits)
	c, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []string
	for w := range 3 {
		wg.Go(func() {
			for call := 0; time.Since(start) < 1500*time.Millisecond; call++ {
				es := entries(fmt.Sprintf("h%d-%d", w, call), 100, 50)
				out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: es})
				if err != nil {
					t.Errorf("PutRecords: %v", err)
					return
				}
				mu.Lock()
				for i, r := range out.Records {
					if r.ErrorCode == nil {
						admitted = append(admitted, string(es[i].Data))
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	st := sim.Stats(stream).Total
	// A bucket of one second starts full: at most rate×(1+elapsed).
	if max := limits.WriteRecordsPerSec * (1 + elapsed); float64(st.AdmittedRecords) > max {
		t.Fatalf("admitted %d records in %.2fs, limit %.0f", st.AdmittedRecords, elapsed, max)
	}
	if st.RefusedRecords == 0 || st.AdmittedRecords < int64(limits.WriteRecordsPerSec) {
		t.Fatalf("hammering for %.2fs admitted %d refused %d", elapsed, st.AdmittedRecords, st.RefusedRecords)
	}
	if st.AdmittedRecords != int64(len(admitted)) {
		t.Fatalf("stats admitted %d, results admitted %d", st.AdmittedRecords, len(admitted))
	}
	recs, err := env.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.Data)]++
	}
	sameSet(t, admitted, m)
}

func TestRoutingTwoShards(t *testing.T) {
	f := newFixture(t, 2, simulator.DefaultLimits())
	es := entries("route", 300, 20)
	// Explicit hash keys at both ends and around the middle of the range.
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	for i, k := range []string{"0", new(big.Int).Sub(half, big.NewInt(1)).String(), half.String(),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)).String()} {
		es[i].ExplicitHashKey = aws.String(k)
	}
	out, err := f.client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: es})
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[string]int64{}
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			t.Fatalf("entry %d refused: %s", i, *r.ErrorCode)
		}
		perShard[*r.ShardId]++
	}
	if out.Records[0].ShardId == nil || *out.Records[0].ShardId == *out.Records[3].ShardId ||
		*out.Records[1].ShardId != *out.Records[0].ShardId || *out.Records[2].ShardId != *out.Records[3].ShardId {
		t.Fatalf("explicit hash keys landed on %s %s %s %s", *out.Records[0].ShardId, *out.Records[1].ShardId,
			*out.Records[2].ShardId, *out.Records[3].ShardId)
	}
	st := f.sim.Stats(f.stream)
	if st.Total.Mispredicted != 0 {
		t.Fatalf("simulator predicted another shard than kinesalite for %d entries", st.Total.Mispredicted)
	}
	if len(st.Shards) != 2 {
		t.Fatalf("stats for %d shards, want 2", len(st.Shards))
	}
	for _, s := range st.Shards {
		if s.AdmittedRecords != perShard[s.ShardID] || s.AdmittedRecords == 0 {
			t.Fatalf("shard %s: simulator counted %d, kinesalite stored %d", s.ShardID, s.AdmittedRecords, perShard[s.ShardID])
		}
	}
	// Each shard has its own budget: 1,000 more per shard in the same window
	// fill exactly the shard that the keys route to.
	es = entries("route2", 500, 20)
	for i := range es {
		es[i].ExplicitHashKey = aws.String("1") // all on the lower shard
	}
	a1, r1 := put(t, f, es)
	a2, r2 := put(t, f, es)
	lower := st.Shards[0].ShardID
	if int64(len(a1)+len(a2)) != 1000-perShard[lower] || int64(r1+r2) != perShard[lower] {
		t.Fatalf("lower shard: admitted %d refused %d after %d earlier", len(a1)+len(a2), r1+r2, perShard[lower])
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestPutRecordThrottle(t *testing.T) {
	limits := simulator.DefaultLimits()
	limits.WriteRecordsPerSec = 3
	f := newFixture(t, 1, limits)
	ctx := ctxT(t)
	putOne := func(i int) error {
		_, err := f.client.PutRecord(ctx, &kinesis.PutRecordInput{
			StreamName: aws.String(f.stream), Data: []byte(fmt.Sprintf("one-%d", i)), PartitionKey: aws.String("k"),
		})
		return err
	}
	for i := range 3 {
		if err := putOne(i); err != nil {
			t.Fatalf("PutRecord %d: %v", i, err)
		}
	}
	err := putOne(3)
	var pt *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pt) {
		t.Fatalf("4th PutRecord: %v, want ProvisionedThroughputExceededException", err)
	}
	f.clock.Advance(time.Second / 3 * 2)
	if err := putOne(4); err != nil {
		t.Fatalf("PutRecord after refill: %v", err)
	}
	st := f.sim.Stats(f.stream).Total
	if st.AdmittedRecords != 4 || st.RefusedRecords != 1 || st.ThrottledPutCalls != 1 || st.PutCalls != 5 {
		t.Fatalf("stats %+v", st)
	}
	got := stored(t, f)
	sameSet(t, []string{"one-0", "one-1", "one-2", "one-4"}, got)
}

func TestInjectPutFailure(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	f.sim.InjectPutFailure(2, "InternalFailure")
	es := entries("inj", 5, 10)
	out, err := f.client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: es})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 2 {
		t.Fatalf("FailedRecordCount %d, want 2", aws.ToInt32(out.FailedRecordCount))
	}
	var admitted []string
	for i, r := range out.Records {
		if i < 2 {
			if aws.ToString(r.ErrorCode) != "InternalFailure" {
				t.Fatalf("entry %d: code %q, want InternalFailure", i, aws.ToString(r.ErrorCode))
			}
			continue
		}
		if r.ErrorCode != nil {
			t.Fatalf("entry %d failed: %s", i, *r.ErrorCode)
		}
		admitted = append(admitted, string(es[i].Data))
	}
	f.sim.InjectPutFailure(1, "InternalFailure")
	_, err = f.client.PutRecord(ctxT(t), &kinesis.PutRecordInput{StreamName: aws.String(f.stream), Data: []byte("x"), PartitionKey: aws.String("k")})
	if apiCode(err) != "InternalFailure" {
		t.Fatalf("PutRecord with an injected failure: %v", err)
	}
	st := f.sim.Stats(f.stream).Total
	if st.FailedRecords != 3 || st.AdmittedRecords != 3 || st.RefusedRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
	sameSet(t, admitted, stored(t, f))
}

func iterator(t *testing.T, f *fixture) *string {
	t.Helper()
	it, err := f.client.GetShardIterator(ctxT(t), &kinesis.GetShardIteratorInput{
		StreamName: aws.String(f.stream), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	return it.ShardIterator
}

func TestReadCallLimit(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	put(t, f, entries("r", 10, 10))
	it := iterator(t, f)
	ctx := ctxT(t)
	var pt *types.ProvisionedThroughputExceededException
	read := 0
	for i := range 6 {
		out, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if i == 5 {
			if !errors.As(err, &pt) {
				t.Fatalf("6th GetRecords in one second: %v, want ProvisionedThroughputExceededException", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("GetRecords %d: %v", i, err)
		}
		read += len(out.Records)
		it = out.NextShardIterator // iterators from GetRecords are tracked too
	}
	if read != 10 {
		t.Fatalf("read %d records, want 10", read)
	}
	f.clock.Advance(250 * time.Millisecond) // one more call's worth
	if _, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it}); err != nil {
		t.Fatalf("GetRecords after 250ms: %v", err)
	}
	if _, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it}); !errors.As(err, &pt) {
		t.Fatalf("second GetRecords after 250ms: %v, want throttled", err)
	}
	st := f.sim.Stats(f.stream).Total
	if st.ReadCalls != 6 || st.ThrottledReads != 2 || st.ReadRecords != 10 || f.sim.UnknownIterators() != 0 {
		t.Fatalf("stats %+v unknown iterators %d", st, f.sim.UnknownIterators())
	}
}

func TestReadByteLimit(t *testing.T) {
	limits := simulator.DefaultLimits()
	limits.ReadCallsPerSec = 0 // only bytes
	f := newFixture(t, 1, limits)
	// 3 MiB written directly to kinesalite.
	for part := range 2 {
		es := entries(fmt.Sprintf("rb%d", part), 24, 64<<10)
		out, err := f.env.Client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: es})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords upstream: %v", err)
		}
	}
	it := iterator(t, f)
	ctx := ctxT(t)
	out, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil {
		t.Fatalf("first GetRecords: %v", err)
	}
	var n int64
	for _, r := range out.Records {
		n += int64(len(r.Data) + len(*r.PartitionKey))
	}
	if len(out.Records) != 48 || n <= 2*simulator.MiB {
		t.Fatalf("first read: %d records, %d bytes; want all 48, over 2 MiB", len(out.Records), n)
	}
	var pt *types.ProvisionedThroughputExceededException
	if _, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); !errors.As(err, &pt) {
		t.Fatalf("read after %d bytes: %v, want throttled", n, err)
	}
	debt := float64(n-2*simulator.MiB) / limits.ReadBytesPerSec
	f.clock.Advance(time.Duration(debt*float64(time.Second)) - 10*time.Millisecond)
	if _, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); !errors.As(err, &pt) {
		t.Fatalf("read just before the debt is repaid: %v, want throttled", err)
	}
	f.clock.Advance(20 * time.Millisecond)
	if _, err := f.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); err != nil {
		t.Fatalf("read after the debt is repaid: %v", err)
	}
	st := f.sim.Stats(f.stream).Total
	if st.ReadBytes != n || st.ThrottledReads != 2 || st.ReadCalls != 2 {
		t.Fatalf("stats %+v, read %d bytes", st, n)
	}
}

// contentTypes records the Content-Type of each request the SDK sends.
type contentTypes struct {
	mu   sync.Mutex
	seen []string
	next *http.Client
}

func (c *contentTypes) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Header.Get("Content-Type"))
	c.mu.Unlock()
	return c.next.Do(r)
}

func TestProtocolJSONAndCBOR(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	rec := &contentTypes{next: http.DefaultClient}
	_, err := f.client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: entries("p", 1, 5)},
		func(o *kinesis.Options) { o.HTTPClient = rec })
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.seen) != 1 || rec.seen[0] != "application/x-amz-json-1.1" {
		t.Fatalf("the SDK sent Content-Type %q, the simulator parses application/x-amz-json-1.1", rec.seen)
	}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, f.sim.Endpoint(), strings.NewReader("\xa0"))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("CBOR PutRecords: status %d, want 400", res.StatusCode)
	}
	// Other operations pass through.
	d, err := f.client.DescribeStreamSummary(ctxT(t), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	if err != nil || aws.ToInt32(d.StreamDescriptionSummary.OpenShardCount) != 1 {
		t.Fatalf("DescribeStreamSummary through the simulator: %v", err)
	}
	// An unknown stream gets the upstream's answer.
	_, err = f.client.PutRecords(ctxT(t), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream + "-missing"), Records: entries("p", 1, 5)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("PutRecords to a missing stream: %v, want ResourceNotFoundException", err)
	}
}
