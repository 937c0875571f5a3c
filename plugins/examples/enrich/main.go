// Command enrich is a shardwork record-handler plugin that does real work:
// it skips records by a field value, adds metadata and configured fields to
// JSON records, and emits the ones that match a routing rule to the output
// stream. Invalid JSON fails the record with a message.
package main

import (
	"strconv"

	"github.com/shardwork/shardwork/plugins/abi/guest"
)

var enr, _ = newEnricher(defaultConfig())

func init() {
	guest.Describe(guest.Info{
		Name: "enrich", Version: "1.0.0", ConfigSchema: configSchema,
		Summary: "filters, enriches and routes JSON records",
		Init: func(config []byte) error {
			c, err := parseConfig(config)
			if err != nil {
				return err
			}
			e, err := newEnricher(c)
			if err != nil {
				return err
			}
			enr = e
			return nil
		},
	})
	guest.RegisterHandler(handle)
}

func main() {}

func handle(r *guest.Record, emit guest.Emitter) guest.Result {
	m := Meta{
		ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, PartitionKey: r.PartitionKey,
		SubSequence: r.SubSequence, ArrivalNanos: r.ArrivalNanos,
	}
	// An emitted record is built in the call's scratch memory: it only has
	// to live until the output batch is encoded.
	v, err := enr.processTo(guest.Scratch, false, r.Data, m)
	if err != nil {
		return guest.Result{Status: guest.Fail, Message: "record " + r.SequenceNumber + "/" + strconv.FormatInt(r.SubSequence, 10) + ": " + err.Error()}
	}
	if v.Skip {
		return guest.Result{Status: guest.Skip, Message: v.Message}
	}
	if v.Emit {
		emit.Emit(guest.UserRecord{PartitionKey: v.OutKey, Data: v.Out})
	}
	return guest.Result{Status: guest.OK}
}
