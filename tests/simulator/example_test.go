package simulator_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/tests/harness"
	"github.com/shardwork/shardwork/tests/simulator"
)

// A simulator in front of kinesalite limiting each shard to 2 records per
// second: of three records written at once, the third is refused as AWS
// refuses it. (In tests, simulator.Start(t, ...) closes it for you.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kin, err := harness.StartKinesalite(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kin.Stop()
	direct, err := harness.NewClient(ctx, kin.Endpoint)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := harness.CreateStream(ctx, direct, "example", 1); err != nil {
		fmt.Println(err)
		return
	}

	limits := simulator.DefaultLimits()
	limits.WriteRecordsPerSec = 2
	clock := simulator.NewFakeClock(time.Unix(0, 0)) // time moves only on Advance
	sim, err := simulator.New(kin.Endpoint, limits, simulator.WithClock(clock))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	client, err := harness.NewClient(ctx, sim.Endpoint())
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{
		StreamName: aws.String("example"),
		Records: []types.PutRecordsRequestEntry{
			{Data: []byte("one"), PartitionKey: aws.String("a")},
			{Data: []byte("two"), PartitionKey: aws.String("b")},
			{Data: []byte("three"), PartitionKey: aws.String("c")},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range out.Records {
		if r.ErrorCode != nil {
			fmt.Println("refused:", *r.ErrorCode)
		} else {
			fmt.Println("stored on", *r.ShardId)
		}
	}
	st := sim.Stats("example")
	fmt.Printf("failed %d, admitted %d, refused %d\n",
		aws.ToInt32(out.FailedRecordCount), st.Total.AdmittedRecords, st.Total.RefusedRecords)
	// Output:
	// stored on shardId-000000000000
	// stored on shardId-000000000000
	// refused: ProvisionedThroughputExceededException
	// failed 1, admitted 2, refused 1
}
