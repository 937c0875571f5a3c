package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

// itemHandler is a handler that also takes the decoded items (the built-in
// handlers log them); a records.Handler only sees the records.
type itemHandler interface {
	HandleItems(ctx context.Context, batch []records.Record, items []any) (records.HandlerOutput, error)
}

// emitMapper is a handler that knows which input record each emitted record
// came from (emitOwners[i] is the batch index of Emit[i]), so that a failed
// put fails only the inputs it belongs to.
type emitMapper interface {
	EmitOwners(out records.HandlerOutput) []int
}

// consumer handles Kinesis events from an event source mapping.
type consumer struct {
	proc    records.Processor
	decode  bool // run the serializer over every user record
	handler records.Handler
	out     sink // nil: no output stream
	skipBad bool // skip and count undecodable records instead of failing them
	log     *slog.Logger
}

// consumeStats is what one invocation did, logged as one line.
type consumeStats struct {
	Records, UserRecords, Handled, Undecodable, Skipped, Emitted, EmitFailed int
	FailedAt                                                                 string
}

// kinesisRecord turns one event record into a records.Record. The shard is
// the part of the eventID before the colon ("shardId-000000000000:4954...").
func kinesisRecord(r events.KinesisEventRecord) records.Record {
	shard, _, _ := strings.Cut(r.EventID, ":")
	return records.Record{
		Data:           r.Kinesis.Data,
		PartitionKey:   r.Kinesis.PartitionKey,
		ShardID:        shard,
		SequenceNumber: r.Kinesis.SequenceNumber,
		ArrivalTime:    r.Kinesis.ApproximateArrivalTimestamp.Time,
	}
}

// Handle deaggregates and decodes the event's records, hands the user
// records before the first undecodable Kinesis record to the handler,
// delivers what the handler emits, and reports the first Kinesis record
// that failed: Lambda then retries from that record (ReportBatchItemFailures).
func (c *consumer) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	in := make([]records.Record, len(ev.Records))
	for i, r := range ev.Records {
		in[i] = kinesisRecord(r)
	}
	return c.handleRecords(ctx, in), nil
}

func (c *consumer) handleRecords(ctx context.Context, in []records.Record) events.KinesisEventResponse {
	st := consumeStats{Records: len(in)}
	failAt := c.process(ctx, in, &st)
	var resp events.KinesisEventResponse
	if failAt >= 0 {
		st.FailedAt = in[failAt].SequenceNumber
		resp.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: in[failAt].SequenceNumber}}
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "kinesis batch",
		slog.Int("records", st.Records), slog.Int("user_records", st.UserRecords),
		slog.Int("handled", st.Handled), slog.Int("undecodable", st.Undecodable),
		slog.Int("skipped", st.Skipped), slog.Int("emitted", st.Emitted),
		slog.Int("emit_failed", st.EmitFailed), slog.String("failed_at", st.FailedAt))
	return resp
}

// process returns the index of the first input record that failed, or -1.
func (c *consumer) process(ctx context.Context, in []records.Record, st *consumeStats) int {
	if len(in) == 0 {
		return -1
	}
	bad := make([]bool, len(in))
	markBad := func(i int, err error) {
		if !bad[i] {
			bad[i] = true
			st.Undecodable++
			c.log.LogAttrs(ctx, slog.LevelWarn, "undecodable record",
				slog.String("shard", in[i].ShardID), slog.String("sequence_number", in[i].SequenceNumber),
				slog.String("partition_key", in[i].PartitionKey), slog.String("error", err.Error()))
		}
	}

	recs, err := c.proc.Aggregator.Deaggregate(ctx, in)
	items, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "deaggregate", slog.String("error", batchErr.Error()))
		return 0
	}
	for _, ie := range items {
		if ie.Index >= 0 && ie.Index < len(in) {
			markBad(ie.Index, ie.Err)
		}
	}
	owner, err := owners(in, bad, recs)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "deaggregate", slog.String("error", err.Error()))
		return 0
	}
	st.UserRecords = len(recs)

	var decoded []any
	if c.decode && len(recs) > 0 {
		data := make([][]byte, len(recs))
		for k := range recs {
			data[k] = recs[k].Data
		}
		_, wantItems := c.handler.(itemHandler)
		var err error
		if wantItems {
			decoded, err = c.proc.Serializer.Deserialize(ctx, data)
		} else {
			err = checkDecodable(ctx, c.proc.Serializer, data)
		}
		items, batchErr := records.SplitErrors(err)
		if batchErr != nil {
			c.log.LogAttrs(ctx, slog.LevelError, "decode", slog.String("error", batchErr.Error()))
			return 0
		}
		for _, ie := range items {
			if ie.Index >= 0 && ie.Index < len(recs) {
				markBad(owner[ie.Index], fmt.Errorf("user record %d: %w", recs[ie.Index].SubSequenceNumber, ie.Err))
			}
		}
	}

	// The handler sees the user records of good Kinesis records; when
	// failing, only those before the first bad one (Lambda redelivers the
	// rest).
	failAt := -1
	limit := len(in)
	if c.skipBad {
		st.Skipped = st.Undecodable
	} else {
		for i, b := range bad {
			if b {
				failAt, limit = i, i
				break
			}
		}
	}
	batch := make([]records.Record, 0, len(recs))
	batchOwner := make([]int, 0, len(recs))
	var batchItems []any
	for k, r := range recs {
		o := owner[k]
		if o >= limit {
			break
		}
		if bad[o] {
			continue
		}
		batch = append(batch, r)
		batchOwner = append(batchOwner, o)
		if decoded != nil {
			batchItems = append(batchItems, decoded[k])
		}
	}
	if len(batch) == 0 {
		return failAt
	}
	first := func(i int) {
		if failAt < 0 || i < failAt {
			failAt = i
		}
	}

	var out records.HandlerOutput
	if ih, ok := c.handler.(itemHandler); ok {
		out, err = ih.HandleItems(ctx, batch, batchItems)
	} else {
		out, err = c.handler.Handle(ctx, batch)
	}
	if err == nil && len(out.Results) != len(batch) {
		err = fmt.Errorf("handler returned %d results for %d records", len(out.Results), len(batch))
	}
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "handler", slog.String("error", err.Error()))
		first(batchOwner[0])
		return failAt
	}
	for k, r := range out.Results {
		switch r.Status {
		case records.StatusOK, records.StatusSkip:
			st.Handled++
			continue
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "record failed in handler",
			slog.String("status", r.Status.String()), slog.String("message", r.Message),
			slog.String("sequence_number", batch[k].SequenceNumber), slog.Int64("sub_sequence_number", batch[k].SubSequenceNumber))
		first(batchOwner[k])
		break
	}

	if len(out.Emit) > 0 {
		st.Emitted = len(out.Emit)
		if c.out == nil {
			c.log.LogAttrs(ctx, slog.LevelError, "handler emitted records but no output stream is configured (SHARDWORK_OUTPUT_STREAM)", slog.Int("emitted", len(out.Emit)))
			first(batchOwner[0])
			return failAt
		}
		err := c.out.Send(ctx, out.Emit)
		if err != nil {
			items, batchErr := records.SplitErrors(err)
			st.EmitFailed = len(items)
			if batchErr != nil {
				st.EmitFailed = len(out.Emit)
			}
			c.log.LogAttrs(ctx, slog.LevelError, "output stream", slog.String("error", err.Error()))
			em, ok := c.handler.(emitMapper)
			if !ok || batchErr != nil {
				// Which inputs the failed records came from is unknown:
				// every handled input is affected.
				first(batchOwner[0])
				return failAt
			}
			eo := em.EmitOwners(out)
			for _, ie := range items {
				if ie.Index >= 0 && ie.Index < len(eo) && eo[ie.Index] < len(batchOwner) {
					first(batchOwner[eo[ie.Index]])
				} else {
					first(batchOwner[0])
				}
			}
		}
	}
	return failAt
}

// owners maps each deaggregated record to the index of the Kinesis record
// it came from. Outputs follow the inputs in order and copy their sequence
// numbers; inputs marked bad produced none.
func owners(in []records.Record, bad []bool, recs []records.Record) ([]int, error) {
	owner := make([]int, len(recs))
	j := 0
	for k := range recs {
		for j < len(in) && (bad[j] || in[j].SequenceNumber != recs[k].SequenceNumber) {
			j++
		}
		if j == len(in) {
			return nil, fmt.Errorf("deaggregated record %d (sequence number %s) matches no input record in order", k, recs[k].SequenceNumber)
		}
		owner[k] = j
	}
	return owner, nil
}

// checkDecodable reports, as Deserialize would, the records the serializer
// cannot decode, for a handler that does not take the decoded items. JSON
// is only validated: Deserialize runs on the invalid records alone, for its
// error messages.
func checkDecodable(ctx context.Context, ser records.Serializer, data [][]byte) error {
	js, ok := ser.(records.JSONSerializer)
	if !ok {
		_, err := ser.Deserialize(ctx, data)
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var badIdx []int
	var bad [][]byte
	for i, d := range data {
		if !json.Valid(d) {
			badIdx = append(badIdx, i)
			bad = append(bad, d)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	_, err := js.Deserialize(ctx, bad)
	items, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		return batchErr
	}
	for k := range items {
		if items[k].Index >= 0 && items[k].Index < len(badIdx) {
			items[k].Index = badIdx[items[k].Index]
		}
	}
	if len(items) == 0 {
		return nil
	}
	return items
}
