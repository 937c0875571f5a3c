package shards

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	// ErrClosed is returned by Records and Run after Close.
	ErrClosed = errors.New("consumer closed")
	// ErrRunning is returned when Records or Run is called while the
	// consumer is already running.
	ErrRunning = errors.New("consumer already running")
	// ErrDecode wraps failures to unpack or deserialize a record.
	ErrDecode = errors.New("record decode failed")
	// ErrHandlerFailed wraps a record a handler marked StatusFail (or kept
	// asking to retry past the retry limit).
	ErrHandlerFailed = errors.New("record handler failed")
)

// RecordError is an error about one record: it names the shard and the
// sequence number so the record can be found again.
type RecordError struct {
	Stream            string
	ShardID           string
	SequenceNumber    string
	SubSequenceNumber int64
	Err               error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("stream %s shard %s record %s/%d: %v", e.Stream, e.ShardID, e.SequenceNumber, e.SubSequenceNumber, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// ShardError is an error about one shard (a failed read, checkpoint or
// lease operation).
type ShardError struct {
	Stream  string
	ShardID string
	Op      string
	Err     error
}

func (e *ShardError) Error() string {
	if e.ShardID == "" {
		return fmt.Sprintf("stream %s: %s: %v", e.Stream, e.Op, e.Err)
	}
	return fmt.Sprintf("stream %s shard %s: %s: %v", e.Stream, e.ShardID, e.Op, e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }
