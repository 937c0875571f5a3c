package records_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/shardwork/shardwork/core/records"
)

// A processor serializes items and aggregates them into Kinesis records; a
// consumer deaggregates and deserializes them again.
func Example() {
	ctx := context.Background()
	p, err := records.ByName("jsonlines")
	if err != nil {
		panic(err)
	}
	data, err := p.Serializer.Serialize(ctx, []any{map[string]any{"test": 123}, map[string]any{"test": 456}})
	if err != nil {
		panic(err)
	}
	in := []records.UserRecord{{PartitionKey: "a", Data: data[0]}, {PartitionKey: "a", Data: data[1]}}
	out, err := p.Aggregator.Aggregate(ctx, in, records.MaxRecordSize)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d record, %d items: %q\n", len(out), out[0].Count, out[0].Data)

	users, err := p.Aggregator.Deaggregate(ctx, []records.Record{{Data: out[0].Data, PartitionKey: "a", SequenceNumber: "49"}})
	if err != nil {
		panic(err)
	}
	for _, u := range users {
		items, _ := p.Serializer.Deserialize(ctx, [][]byte{u.Data})
		fmt.Println(u.SequenceNumber, u.SubSequenceNumber, items[0])
	}
	// Output:
	// 1 record, 2 items: "{\"test\": 123}\n{\"test\": 456}\n"
	// 49 0 map[test:123]
	// 49 1 map[test:456]
}

// KPL aggregation keeps each user record's partition key and explicit hash
// key in the aggregated record's tables.
func ExampleKPLAggregator() {
	ctx := context.Background()
	in := []records.UserRecord{
		{PartitionKey: "a", Data: []byte("123")},
		{PartitionKey: "b", ExplicitHashKey: "42", Data: []byte("test")},
	}
	out, _ := records.KPLAggregator{}.Aggregate(ctx, in, records.MaxRecordSize)
	fmt.Printf("%x (partition key %q)\n", out[0].Data[:4], out[0].PartitionKey)

	users, _ := records.KPLAggregator{}.Deaggregate(ctx, []records.Record{{Data: out[0].Data, PartitionKey: out[0].PartitionKey}})
	for _, u := range users {
		fmt.Printf("%d %q %q %q aggregated=%v\n", u.SubSequenceNumber, u.PartitionKey, u.ExplicitHashKey, u.Data, u.Aggregated)
	}
	// Output:
	// f3899ac2 (partition key "a")
	// 0 "a" "" "123" aggregated=true
	// 1 "b" "42" "test" aggregated=true
}

// Malformed input is reported per record, wrapping ErrMalformed; the other
// records go on.
func ExampleNetstringAggregator_Deaggregate() {
	in := []records.Record{{Data: []byte("3:123,4:test,")}, {Data: []byte("5:abc,")}}
	out, err := records.NetstringAggregator{}.Deaggregate(context.Background(), in)
	for _, r := range out {
		fmt.Printf("%q\n", r.Data)
	}
	items, _ := records.SplitErrors(err)
	fmt.Println(items[0].Index, errors.Is(err, records.ErrMalformed))
	fmt.Println(items[0].Err)
	// Output:
	// "123"
	// "test"
	// 1 true
	// malformed input: netstring 0 at byte 0: length 5 exceeds the 4 bytes left (truncated data or wrong length)
}

// An item too large for any Kinesis record is reported at aggregation; the
// producer can check SizeAlone before queueing it.
func ExampleSimpleAggregator_SizeAlone() {
	big := records.UserRecord{PartitionKey: "k", Data: make([]byte, records.MaxRecordSize)}
	a := records.SimpleAggregator{}
	fmt.Println(a.SizeAlone(big) > records.MaxRecordSize)
	_, err := a.Aggregate(context.Background(), []records.UserRecord{big}, records.MaxRecordSize)
	fmt.Println(errors.Is(err, records.ErrTooLarge))
	// Output:
	// true
	// true
}

// Processors are chosen by name, for example from configuration.
func ExampleByName() {
	fmt.Println(records.Names())
	p, err := records.ByName("kpl-json")
	fmt.Println(p.Name, err)
	_, err = records.ByName("avro")
	fmt.Println(err)
	// Output:
	// [string json jsonlines jsonlist msgpack kpl-json kpl-string]
	// kpl-json <nil>
	// records: unknown processor "avro" (known: string, json, jsonlines, jsonlist, msgpack, kpl-json, kpl-string)
}
