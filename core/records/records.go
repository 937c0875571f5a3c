package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinesis limits that processors and the producer respect.
const (
	// MaxRecordSize is the default Kinesis limit for one record: data plus
	// partition key, in bytes (1 MiB).
	MaxRecordSize = 1 << 20
	// MaxPartitionKeyLen is the Kinesis limit on a partition key, in Unicode
	// code points.
	MaxPartitionKeyLen = 256
)

// UserRecord is one record as a producer hands it to an aggregator: the
// serialized item and the keys that route it.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string // decimal 128-bit hash key, or "" to hash PartitionKey
	Data            []byte
}

// Aggregated is one Kinesis record made by an Aggregator. It holds the Count
// inputs that follow the previous output's inputs: outputs cover the input
// slice in order, without gaps, so Count is the output-to-input map.
type Aggregated struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
	Count           int
}

// Record is one user record as a consumer sees it, with the metadata needed
// to acknowledge and checkpoint it.
type Record struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
	ShardID         string
	SequenceNumber  string
	// SubSequenceNumber is the record's index inside its Kinesis record
	// (0 for a record that was not aggregated).
	SubSequenceNumber int64
	// Aggregated is true when the record was unpacked from a Kinesis record
	// that held several user records (KPL, newline, netstring, list).
	Aggregated  bool
	ArrivalTime time.Time
}

// Serializer turns items into record data and back. Both directions take a
// batch so that a WebAssembly implementation costs one call per batch.
//
// When some items fail and others succeed, the methods return the full-length
// result (failed entries are nil) together with an ItemErrors naming each
// failed index. Any other error fails the whole batch.
type Serializer interface {
	Serialize(ctx context.Context, items []any) ([][]byte, error)
	Deserialize(ctx context.Context, data [][]byte) ([]any, error)
}

// Aggregator packs serialized user records into Kinesis records and unpacks
// them again.
type Aggregator interface {
	// Aggregate packs in, in order, into Kinesis records whose data plus
	// partition key never exceed maxSize bytes. A record that cannot fit even
	// alone is reported in an ItemErrors (index = input) and left out; the
	// Count of the outputs then skips it.
	Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error)
	// Deaggregate unpacks Kinesis records in order. Each output copies its
	// input's shard, sequence number and arrival time and numbers its
	// sub-sequence. An input that cannot be unpacked is reported in an
	// ItemErrors (index = input) and contributes no output; the others go on.
	Deaggregate(ctx context.Context, in []Record) ([]Record, error)
	// SizeAlone is the size Kinesis would count (data plus partition key) for
	// an aggregate holding r alone. The producer rejects a record at Put when
	// it exceeds the limit.
	SizeAlone(r UserRecord) int
}

// Processor pairs a Serializer and an Aggregator under a name, as
// async-kinesis' processor classes do.
type Processor struct {
	Name       string
	Serializer Serializer
	Aggregator Aggregator
}

// Status is a record handler's verdict on one record.
type Status uint8

const (
	StatusOK    Status = iota // finished; may be checkpointed
	StatusRetry               // deliver again later
	StatusFail                // give up: error/dead-letter path, then move on
	StatusSkip                // deliberately ignored; counts as finished
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusRetry:
		return "retry"
	case StatusFail:
		return "fail"
	case StatusSkip:
		return "skip"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Result is a handler's verdict on one record, with an optional message.
type Result struct {
	Status  Status
	Message string
}

// HandlerOutput is what a Handler returns for one batch: one Result per
// input record, in order, and records to emit to an output stream.
type HandlerOutput struct {
	Results []Result
	Emit    []UserRecord
}

// Handler processes a batch of consumed records. Native Go handlers and
// WebAssembly record-handler plugins both satisfy it.
type Handler interface {
	Handle(ctx context.Context, batch []Record) (HandlerOutput, error)
}

// ItemError is the failure of one item of a batch.
type ItemError struct {
	Index int
	Err   error
}

func (e ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }
func (e ItemError) Unwrap() error { return e.Err }

// ItemErrors reports the items of a batch that failed while the rest
// succeeded.
type ItemErrors []ItemError

func (es ItemErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the batch's items failed", len(es))
	for i, e := range es {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(es)-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As look into each item's error.
func (es ItemErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// SplitErrors separates per-item failures from a batch failure. It returns
// the per-item errors (nil if there are none) and the error that failed the
// whole batch (nil if there is none).
func SplitErrors(err error) (items ItemErrors, batch error) {
	if err == nil {
		return nil, nil
	}
	var ie ItemErrors
	if errors.As(err, &ie) {
		return ie, nil
	}
	return nil, err
}
