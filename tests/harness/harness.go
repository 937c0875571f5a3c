package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

// The processes a test binary shares: started on first use, stopped by Main.
var (
	mu                       sync.Mutex
	kin                      *Kinesalite
	kinErr                   error
	redisSrv                 *RedisServer
	redisErr                 error
	kinStarted, redisStarted bool
)

// Main runs a package's tests and then stops every process the harness
// started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops the processes the harness started.
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	kin.Stop()
	kin, kinStarted = nil, false
	redisSrv.Stop()
	redisSrv, redisStarted = nil, false
}

// Env is a local Kinesis for one test: the endpoint and a client for it.
type Env struct {
	Endpoint string
	Client   *kinesis.Client
}

// Kinesis returns the test binary's kinesalite (starting it on first use)
// and a client for it. It fails the test when kinesalite cannot start.
func Kinesis(tb testing.TB) *Env {
	tb.Helper()
	mu.Lock()
	if !kinStarted {
		kinStarted = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		kin, kinErr = StartKinesalite(ctx)
		cancel()
	}
	k, err := kin, kinErr
	mu.Unlock()
	if err != nil {
		tb.Fatalf("local kinesis: %v", err)
	}
	if k.Exited() {
		tb.Fatalf("local kinesis: kinesalite (port %d) exited during the test run; its output:\n%s", k.Port, k.Output())
	}
	c, err := NewClient(context.Background(), k.Endpoint)
	if err != nil {
		tb.Fatalf("kinesis client: %v", err)
	}
	return &Env{Endpoint: k.Endpoint, Client: c}
}

// NewClient returns a client for a local Kinesis endpoint with dummy
// credentials.
func NewClient(ctx context.Context, endpoint string) (*kinesis.Client, error) {
	return kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{
		Region: "us-east-1", Endpoint: endpoint,
		AccessKeyID: "local", SecretAccessKey: "local",
	})
}

// Redis returns a Redis for the test binary (see FindOrStartRedis). It fails
// the test, never skips it, when none can be had.
func Redis(tb testing.TB) *RedisServer {
	tb.Helper()
	mu.Lock()
	if !redisStarted {
		redisStarted = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		redisSrv, redisErr = FindOrStartRedis(ctx)
		cancel()
	}
	r, err := redisSrv, redisErr
	mu.Unlock()
	if err != nil {
		tb.Fatalf("redis: %v", err)
	}
	return r
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns a name made from the test's name and a random suffix,
// valid as a Kinesis stream name (≤ 128 characters of [a-zA-Z0-9_.-]).
func UniqueName(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := nameUnsafe.ReplaceAllString(tb.Name(), "-")
	if len(base) > 100 {
		base = base[len(base)-100:]
	}
	return strings.Trim(base, "-.") + "-" + hex.EncodeToString(b[:])
}

// NewStream creates a uniquely named stream with the given shard count,
// waits until it is ACTIVE, and deletes it when the test ends.
func (e *Env) NewStream(tb testing.TB, shards int) string {
	tb.Helper()
	name := UniqueName(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := CreateStream(ctx, e.Client, name, shards); err != nil {
		tb.Fatalf("create stream: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := e.Client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
		if err != nil && !kinesisapi.IsNotFound(err) {
			tb.Errorf("delete stream %s: %v", name, err)
		}
	})
	return name
}

// CreateStream creates a stream and waits until it is ACTIVE.
func CreateStream(ctx context.Context, c *kinesis.Client, name string, shards int) error {
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))})
	if err != nil {
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stream %s not active: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// ReadAll reads every record currently in the stream, shard by shard from
// TRIM_HORIZON, until each shard is caught up (MillisBehindLatest 0 and an
// empty page) or closed. Records come in shard order, then sequence order.
func (e *Env) ReadAll(ctx context.Context, stream string) ([]types.Record, error) {
	shards, err := kinesisapi.ListShards(ctx, e.Client, stream)
	if err != nil {
		return nil, err
	}
	var all []types.Record
	for _, s := range shards {
		it, err := e.Client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: aws.String(s.ID),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("shard iterator %s/%s: %w", stream, s.ID, err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := e.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000), StreamARN: nil})
			if err != nil {
				return nil, fmt.Errorf("get records %s/%s: %w", stream, s.ID, err)
			}
			all = append(all, out.Records...)
			if len(out.Records) == 0 && (out.MillisBehindLatest == nil || *out.MillisBehindLatest == 0) {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return all, nil
}
