package batch

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrClosed is returned by Put, Flush and Start after Close.
	ErrClosed = errors.New("producer closed")
	// ErrQueueFull is returned by the TryPut variants when the queue is at
	// MaxQueueSize records or MaxQueueBytes bytes.
	ErrQueueFull = errors.New("producer queue full")
	// ErrInvalidOption wraps every option error from New.
	ErrInvalidOption = errors.New("invalid producer option")
	// ErrInvalidRecord is returned at Put for a record Kinesis would refuse
	// or an item the serializer cannot encode; nothing is queued.
	ErrInvalidRecord = errors.New("invalid record")
	// ErrStreamNotFound is returned by Start when the stream does not exist
	// and CreateStream is not set.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrNotStarted is returned by Put and Flush before Start.
	ErrNotStarted = errors.New("producer not started")
)

// FailedRecord is a record the producer gave up on.
type FailedRecord struct {
	// Item is the value given to Put, or nil for PutRecord.
	Item            any
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
	// Attempts is how many PutRecords calls carried the record.
	Attempts int
	// Err is the last error: the Kinesis error code and message of the
	// record's entry, or the error of the whole call.
	Err error

	seq uint64 // Put order
}

func (f FailedRecord) Error() string {
	return fmt.Sprintf("record with partition key %q (%d bytes) after %d attempts: %v", f.PartitionKey, len(f.Data), f.Attempts, f.Err)
}

func (f FailedRecord) Unwrap() error { return f.Err }

// DeliveryError is Close's (and Flush's) error when records could not be
// delivered. It lists them (Close: the first 10000; Count is the total)
// with their errors.
type DeliveryError struct {
	Stream  string
	Count   int
	Records []FailedRecord
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream %s: %d records not delivered", e.Stream, e.Count)
	for i, r := range e.Records {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", e.Count-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As each distinct error of the listed
// records.
func (e *DeliveryError) Unwrap() []error {
	seen := map[string]bool{}
	var out []error
	for _, r := range e.Records {
		k := r.Err.Error()
		if !seen[k] {
			seen[k] = true
			out = append(out, r.Err)
		}
	}
	return out
}

// EntryError is a per-entry error Kinesis reported in a PutRecords result.
type EntryError struct {
	Code    string
	Message string
}

func (e *EntryError) Error() string { return e.Code + ": " + e.Message }

// Throttled reports whether Kinesis refused the entry for throughput.
func (e *EntryError) Throttled() bool { return e.Code == "ProvisionedThroughputExceededException" }

// FlushInfo describes one PutRecords call, for the AfterFlush callback.
type FlushInfo struct {
	// Entries is the number of Kinesis records in the call; UserRecords the
	// records given to Put that they carry; Bytes their data plus
	// partition keys.
	Entries, UserRecords, Bytes int
	// Failed entries (Throttled of them for throughput) will be retried or
	// given up.
	Failed, Throttled int
	Duration          time.Duration
	// Err is the error of the whole call, if it failed.
	Err error
}
