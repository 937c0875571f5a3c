package shards

import (
	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/records"
)

// defaultProcessor is JSON, one item per Kinesis record (async-kinesis'
// default).
func defaultProcessor() records.Processor { return records.JSONProcessor() }

// newDefaultStore is an in-memory lease store of its own: one process.
func newDefaultStore(app, stream string) (checkpoint.Store, error) {
	return checkpoint.NewMemory(app, stream)
}
