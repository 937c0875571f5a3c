// Command kpl is a shardwork aggregator plugin for the KPL aggregation
// format (magic F3 89 9A C2, protobuf AggregatedRecord, MD5 trailer),
// byte-identical to the reference aggregator awslabs/kinesis-aggregation.
package main

import "github.com/shardwork/shardwork/plugins/abi/guest"

func init() {
	guest.Describe(guest.Info{Name: "kpl", Version: "1.0.0", Summary: "KPL aggregation format (aggregate and deaggregate)"})
	guest.RegisterAggregator(kplAggregator{})
}

func main() {}

type kplAggregator struct{}

func (kplAggregator) SizeAlone(pkLen, ehkLen, dataLen int) int {
	return sizeAlone(pkLen, ehkLen, dataLen)
}

func (kplAggregator) Aggregate(in []guest.UserRecord, maxSize int) (out []guest.Aggregated, failed []guest.ItemError) {
	recs := make([]UserRecord, len(in))
	for i, r := range in {
		recs[i] = UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
	}
	aggregateAll(recs, maxSize,
		func(pk, ehk string, data []byte, count int) {
			out = append(out, guest.Aggregated{PartitionKey: pk, ExplicitHashKey: ehk, Data: data, Count: count})
		},
		func(i int, err error) { failed = append(failed, guest.ItemError{Index: i, Err: err}) })
	return out, failed
}

func (kplAggregator) Deaggregate(r *guest.Record) ([]guest.UserRecord, bool, error) {
	var out []guest.UserRecord
	err := parse(r.Data, func(u UserRecord) {
		out = append(out, guest.UserRecord{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, Data: u.Data})
	})
	if err == ErrNotAggregate {
		return []guest.UserRecord{{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
