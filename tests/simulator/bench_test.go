package simulator_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
)

// BenchmarkPutRecords compares PutRecords calls of 500 × 100 B entries sent
// to kinesalite directly and through a simulator with no limits (the
// proxy's own cost: parsing, routing, re-encoding, merging).
func BenchmarkPutRecords(b *testing.B) {
	env := harness.Kinesis(b)
	stream := env.NewStream(b, 4)
	sim := simulator.Start(b, env.Endpoint, simulator.Limits{})
	through, err := harness.NewClient(context.Background(), sim.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	es := entries("bench", 500, 100)
	for _, c := range []struct {
		name   string
		client *kinesis.Client
	}{{"direct", env.Client}, {"simulator", through}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				out, err := c.client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: es})
				if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
					b.Fatalf("PutRecords: %v", err)
				}
			}
			b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "records/s")
		})
	}
	if st := sim.Stats(stream).Total; st.RefusedRecords != 0 || st.Mispredicted != 0 {
		b.Fatalf("stats %+v", st)
	}
}
