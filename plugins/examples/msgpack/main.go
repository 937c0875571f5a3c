// Command msgpack is a shardwork plugin: a msgpack serializer and a
// netstring aggregator, byte-compatible with async-kinesis' MsgpackProcessor
// (items framed as <decimal length>:<msgpack bytes>,).
package main

import (
	"fmt"

	"github.com/shardwork/shardwork/plugins/abi/guest"
)

func init() {
	guest.Describe(guest.Info{
		Name: "msgpack", Version: "1.0.0",
		Summary: "msgpack serializer and netstring aggregator (async-kinesis MsgpackProcessor format)",
	})
	guest.RegisterSerializer(jsonToMsgpack, msgpackToJSON)
	guest.RegisterAggregator(netstrings{})
}

func main() {}

type netstrings struct{}

func (netstrings) SizeAlone(pkLen, ehkLen, dataLen int) int {
	return pkLen + dataLen + netstringOverhead(dataLen)
}

// Aggregate packs records in order; a new output starts when the next item
// would push data plus the output's partition key past maxSize.
func (netstrings) Aggregate(in []guest.UserRecord, maxSize int) (out []guest.Aggregated, failed []guest.ItemError) {
	var cur *guest.Aggregated
	for i, r := range in {
		add := len(r.Data) + netstringOverhead(len(r.Data))
		if add+len(r.PartitionKey) > maxSize {
			failed = append(failed, guest.ItemError{Index: i, Err: fmt.Errorf("record of %d bytes with a %d-byte partition key exceeds the %d-byte limit once framed", len(r.Data), len(r.PartitionKey), maxSize)})
			continue
		}
		if cur == nil || len(cur.Data)+add+len(cur.PartitionKey) > maxSize {
			out = append(out, guest.Aggregated{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey})
			cur = &out[len(out)-1]
		}
		cur.Data = appendNetstring(cur.Data, r.Data)
		cur.Count++
	}
	return out, failed
}

func (netstrings) Deaggregate(r *guest.Record) ([]guest.UserRecord, bool, error) {
	var out []guest.UserRecord
	err := splitNetstrings(r.Data, func(item []byte) {
		out = append(out, guest.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: item})
	})
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
