package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/shardwork/shardwork/core/records"
)

// logHandler logs every record at debug level (its decoded item when the
// processor decodes) and finishes it.
type logHandler struct{ log *slog.Logger }

func (h logHandler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	return h.HandleItems(ctx, batch, nil)
}

func (h logHandler) HandleItems(ctx context.Context, batch []records.Record, items []any) (records.HandlerOutput, error) {
	if h.log.Enabled(ctx, slog.LevelDebug) {
		for i, r := range batch {
			attrs := []slog.Attr{
				slog.String("shard", r.ShardID), slog.String("sequence_number", r.SequenceNumber),
				slog.Int64("sub_sequence_number", r.SubSequenceNumber), slog.String("partition_key", r.PartitionKey),
			}
			if i < len(items) {
				if b, err := json.Marshal(items[i]); err == nil {
					attrs = append(attrs, slog.Any("item", json.RawMessage(b)))
				}
			} else {
				attrs = append(attrs, slog.Int("bytes", len(r.Data)))
			}
			h.log.LogAttrs(ctx, slog.LevelDebug, "record", attrs...)
		}
	}
	return records.HandlerOutput{Results: make([]records.Result, len(batch))}, nil
}

// discardHandler finishes every record without looking at it.
type discardHandler struct{}

func (discardHandler) Handle(_ context.Context, batch []records.Record) (records.HandlerOutput, error) {
	return records.HandlerOutput{Results: make([]records.Result, len(batch))}, nil
}

// forwardHandler emits every user record unchanged (data, partition key,
// explicit hash key) to the output stream.
type forwardHandler struct{}

func (forwardHandler) Handle(_ context.Context, batch []records.Record) (records.HandlerOutput, error) {
	out := records.HandlerOutput{Results: make([]records.Result, len(batch)), Emit: make([]records.UserRecord, len(batch))}
	for i, r := range batch {
		out.Emit[i] = records.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
	}
	return out, nil
}

// EmitOwners implements emitMapper: Emit[i] comes from batch[i].
func (forwardHandler) EmitOwners(out records.HandlerOutput) []int {
	o := make([]int, len(out.Emit))
	for i := range o {
		o[i] = i
	}
	return o
}
