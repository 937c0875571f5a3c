package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.StopAll()
	if bootDir != "" {
		_ = os.RemoveAll(bootDir)
	}
	os.Exit(code)
}

var (
	bootOnce sync.Once
	bootDir  string // this test binary's package directory, removed at exit
	bootPath string
	bootErr  error
)

// bootstrap builds cmd/lambda once per test binary into build/e2e.
func bootstrap(tb testing.TB) string {
	tb.Helper()
	bootOnce.Do(func() {
		root, err := harness.ModuleRoot()
		if err != nil {
			bootErr = err
			return
		}
		if err := os.MkdirAll(filepath.Join(root, "build", "e2e"), 0o755); err != nil {
			bootErr = err
			return
		}
		dir, err := os.MkdirTemp(filepath.Join(root, "build", "e2e"), "pkg-")
		if err != nil {
			bootErr = err
			return
		}
		bootDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bootPath, bootErr = harness.BuildBootstrap(ctx, dir)
	})
	if bootErr != nil {
		tb.Fatal(bootErr)
	}
	return bootPath
}

// function starts the bootstrap under the emulator with handler and env,
// pointed at the test's kinesalite.
func function(tb testing.TB, kin *harness.Env, handler string, env ...string) *harness.RIE {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_KINESIS=" + kin.Endpoint,
	}
	r, err := harness.StartRIE(ctx, harness.RIEConfig{Bootstrap: bootstrap(tb), Handler: handler, Env: append(base, env...)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		r.Stop()
		if tb.Failed() {
			tb.Logf("emulator output:\n%s", tail(r.Output(), 6000))
		}
	})
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// invoke sends payload and decodes the function's answer into out.
func invoke(tb testing.TB, r *harness.RIE, payload any, out any) {
	tb.Helper()
	b, ok := payload.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	body, err := r.Invoke(ctx, b)
	if err != nil {
		tb.Fatalf("invoke: %v", err)
	}
	var fe struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.ErrorType != "" {
		tb.Fatalf("function error %s: %s", fe.ErrorType, fe.ErrorMessage)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("response %s: %v", body, err)
		}
	}
}

// put writes Kinesis records (data, partition key) into the stream in one
// PutRecords call, in order.
func put(tb testing.TB, kin *harness.Env, stream string, recs ...records.Aggregated) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(recs) > 0 {
		n := min(len(recs), 500)
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for _, r := range recs[:n] {
			e := types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)}
			if r.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(r.ExplicitHashKey)
			}
			in.Records = append(in.Records, e)
		}
		out, err := kin.Client.PutRecords(ctx, in)
		if err != nil {
			tb.Fatal(err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			tb.Fatalf("%d records failed", aws.ToInt32(out.FailedRecordCount))
		}
		recs = recs[n:]
	}
}

// readAll reads the (one-shard) stream back.
func readAll(tb testing.TB, kin *harness.Env, stream string) []types.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := kin.ReadAll(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// event builds the Kinesis event an event source mapping would deliver for
// recs, read from shardId-000000000000 of stream.
func event(stream string, recs []types.Record) events.KinesisEvent {
	var ev events.KinesisEvent
	for _, r := range recs {
		seq := aws.ToString(r.SequenceNumber)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			AwsRegion:         "us-east-1",
			EventID:           "shardId-000000000000:" + seq,
			EventName:         "aws:kinesis:record",
			EventSource:       "aws:kinesis",
			EventSourceArn:    "arn:aws:kinesis:us-east-1:000000000000:stream/" + stream,
			EventVersion:      "1.0",
			InvokeIdentityArn: "arn:aws:iam::000000000000:role/consumer",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
				Data:                        r.Data,
				EncryptionType:              string(r.EncryptionType),
				PartitionKey:                aws.ToString(r.PartitionKey),
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		})
	}
	return ev
}

// userRecords deaggregates Kinesis records read from a stream.
func userRecords(tb testing.TB, agg records.Aggregator, recs []types.Record) []records.Record {
	tb.Helper()
	in := make([]records.Record, len(recs))
	for i, r := range recs {
		in[i] = records.Record{Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber)}
	}
	out, err := agg.Deaggregate(context.Background(), in)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

type batchResponse struct {
	BatchItemFailures []struct {
		ItemIdentifier string `json:"itemIdentifier"`
	} `json:"batchItemFailures"`
}

func (b batchResponse) ids() []string {
	var out []string
	for _, f := range b.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

var (
	pluginsOnce sync.Once
	pluginsDir  string
	pluginsErr  error
)

// pluginPackage builds the example plugins next to the bootstrap (as `make
// lambda` packages them: plugins/NAME.wasm) and precompiles them into
// plugin-cache with `bootstrap compile-plugins`. It returns the package
// directory.
func pluginPackage(tb testing.TB) string {
	tb.Helper()
	boot := bootstrap(tb)
	pluginsOnce.Do(func() {
		root, err := harness.ModuleRoot()
		if err != nil {
			pluginsErr = err
			return
		}
		dir := filepath.Dir(boot)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var wasm []string
		for _, name := range []string{"enrich", "kpl"} {
			out := filepath.Join(dir, "plugins", name+".wasm")
			cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./plugins/examples/"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if b, err := cmd.CombinedOutput(); err != nil {
				pluginsErr = fmt.Errorf("build plugin %s: %v\n%s", name, err, b)
				return
			}
			wasm = append(wasm, out)
		}
		cmd := exec.CommandContext(ctx, boot, append([]string{"compile-plugins", filepath.Join(dir, "plugin-cache")}, wasm...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			pluginsErr = fmt.Errorf("bootstrap compile-plugins: %v\n%s", err, b)
			return
		}
		pluginsDir = dir
	})
	if pluginsErr != nil {
		tb.Fatal(pluginsErr)
	}
	return pluginsDir
}

// kinesisEventJSON is a synthetic event of n JSON records on one shard, as
// an event source mapping would deliver them.
func kinesisEventJSON(tb testing.TB, n int) []byte {
	tb.Helper()
	recs := make([]types.Record, n)
	t0 := time.Unix(1700000000, 0)
	for i := range recs {
		recs[i] = types.Record{
			Data:                        fmt.Appendf(nil, `{"id":"r%d","level":"info","n":%d}`, i, i),
			PartitionKey:                aws.String(fmt.Sprintf("key-%d", i%64)),
			SequenceNumber:              aws.String(fmt.Sprintf("4968056943603622115578351945410581400852494245066%08d", i)),
			ApproximateArrivalTimestamp: aws.Time(t0.Add(time.Duration(i) * time.Millisecond)),
		}
	}
	b, err := json.Marshal(event("bench", recs))
	if err != nil {
		tb.Fatal(err)
	}
	// Lambda (and the emulator, which silently truncates) takes at most
	// 6 MiB per invocation; an event source mapping never sends more.
	if len(b) > 6<<20 {
		tb.Fatalf("a %d-record event of %d bytes exceeds Lambda's 6 MiB payload limit", n, len(b))
	}
	return b
}
