package simulator_test

import (
	"math/big"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
)

// After a split behind the simulator's back, the first write is predicted on
// the closed parent, the upstream's answer reveals it, and the next write
// uses the relisted shards.
func TestReshardRefresh(t *testing.T) {
	f := newFixture(t, 1, simulator.DefaultLimits())
	put(t, f, entries("before", 10, 10))
	ctx := ctxT(t)
	half := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := f.env.Client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(f.stream), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half),
	}); err != nil {
		t.Fatal(err)
	}
	if err := harness.CreateStream(ctx, f.env.Client, f.stream, 1); err != nil { // waits for ACTIVE
		t.Fatal(err)
	}
	put(t, f, entries("during", 20, 10))
	if m := f.sim.Stats(f.stream).Total.Mispredicted; m != 20 {
		t.Fatalf("mispredicted %d right after the split, want all 20", m)
	}
	es := entries("after", 50, 10)
	out, err := f.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: es})
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[string]int64{}
	for _, r := range out.Records {
		perShard[aws.ToString(r.ShardId)]++
	}
	st := f.sim.Stats(f.stream)
	if st.Total.Mispredicted != 20 {
		t.Fatalf("mispredicted %d after relisting, want still 20", st.Total.Mispredicted)
	}
	for id, n := range perShard {
		if id == "shardId-000000000000" {
			t.Fatalf("%d records stored on the closed parent", n)
		}
		if got := st.Shard(id).AdmittedRecords; got != n {
			t.Fatalf("shard %s: simulator counted %d, kinesalite stored %d", id, got, n)
		}
	}
}
