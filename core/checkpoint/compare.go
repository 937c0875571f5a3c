package checkpoint

import (
	"fmt"
	"strings"
)

// maxSequenceDigits bounds a sequence number: Kinesis documents them as
// decimal strings of at most 128 digits.
const maxSequenceDigits = 128

// ValidSequence reports whether s is "" (no sequence) or a decimal integer
// of at most 128 digits, the form of a Kinesis sequence number.
func ValidSequence(s string) bool {
	if len(s) > maxSequenceDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CompareSequence compares two Kinesis sequence numbers numerically and
// returns -1, 0 or +1. Sequence numbers are decimal integers too large for
// any machine integer, so they are compared by length (leading zeros
// ignored) and then digit by digit. "" (no sequence) sorts before every
// sequence number. The result for strings that are not decimal integers
// (see ValidSequence) is consistent but meaningless; stores reject them.
func CompareSequence(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// Compare orders checkpoints by stream position and returns -1, 0 or +1:
// first by sequence number, then a Complete checkpoint is ahead of an
// incomplete one at the same sequence number (every user record of the
// Kinesis record is finished, which is past any single sub-sequence), then
// by sub-sequence number, and last a Finished checkpoint is ahead of an
// unfinished one at the same position.
func Compare(a, b Checkpoint) int {
	if c := comparePosition(a, b); c != 0 {
		return c
	}
	if a.Finished != b.Finished {
		if a.Finished {
			return 1
		}
		return -1
	}
	return 0
}

func comparePosition(a, b Checkpoint) int {
	if c := CompareSequence(a.SequenceNumber, b.SequenceNumber); c != 0 {
		return c
	}
	if a.Complete != b.Complete {
		if a.Complete {
			return 1
		}
		return -1
	}
	switch {
	case a.SubSequenceNumber < b.SubSequenceNumber:
		return -1
	case a.SubSequenceNumber > b.SubSequenceNumber:
		return 1
	}
	return 0
}

// Merge returns what a store keeps when next is written over stored: the
// further of the two positions (a checkpoint never goes backwards), and
// Finished if either is finished (a finished shard stays finished, even
// when the finishing write carries an older or empty position).
func Merge(stored, next Checkpoint) Checkpoint {
	out := stored
	if comparePosition(next, stored) > 0 {
		out.SequenceNumber = next.SequenceNumber
		out.SubSequenceNumber = next.SubSequenceNumber
		out.Complete = next.Complete
	}
	out.Finished = stored.Finished || next.Finished
	return out
}

// Validate checks c before a store writes it; the error wraps
// ErrInvalidCheckpoint and names the shard.
func (c Checkpoint) Validate(shard string) error {
	if shard == "" {
		return fmt.Errorf("checkpoint: empty shard id: %w", ErrInvalidCheckpoint)
	}
	if !ValidSequence(c.SequenceNumber) {
		return fmt.Errorf("checkpoint: shard %s: sequence number %q is not a decimal integer of at most %d digits: %w",
			shard, c.SequenceNumber, maxSequenceDigits, ErrInvalidCheckpoint)
	}
	if c.SubSequenceNumber < 0 {
		return fmt.Errorf("checkpoint: shard %s: negative sub-sequence number %d: %w",
			shard, c.SubSequenceNumber, ErrInvalidCheckpoint)
	}
	if c.SequenceNumber == "" && c.SubSequenceNumber != 0 {
		return fmt.Errorf("checkpoint: shard %s: sub-sequence %d without a sequence number: %w",
			shard, c.SubSequenceNumber, ErrInvalidCheckpoint)
	}
	return nil
}
