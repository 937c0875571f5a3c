package checkpoint

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidOption is wrapped by every error a constructor returns for a
	// bad option value; the message names the option and the value.
	ErrInvalidOption = errors.New("invalid option")
	// ErrInvalidCheckpoint means a checkpoint or shard id a caller passed is
	// malformed (a sequence number that is not a decimal integer, a negative
	// sub-sequence number, an empty shard id). Nothing was written.
	ErrInvalidCheckpoint = errors.New("invalid checkpoint")
)

// LeaseError reports a lease operation refused because of who holds the
// lease. It wraps ErrLeaseHeld (Take) or ErrLeaseLost (Renew, Checkpoint,
// Release), so callers branch with errors.Is.
type LeaseError struct {
	// Op is the refused operation: "take", "renew", "checkpoint" or "release".
	Op    string
	Shard string
	// Owner and Counter describe the lease as the store holds it now
	// (Owner is "" when the lease is free).
	Owner   string
	Counter int64
	// Held is the counter of the lease the caller presented (0 for take).
	Held int64
	Err  error
}

func (e *LeaseError) Error() string {
	owner := e.Owner
	if owner == "" {
		owner = "none"
	}
	if e.Op == "take" {
		return fmt.Sprintf("checkpoint: take shard %s: %v (owner %s, counter %d)", e.Shard, e.Err, owner, e.Counter)
	}
	return fmt.Sprintf("checkpoint: %s shard %s with counter %d: %v (owner %s, counter %d)",
		e.Op, e.Shard, e.Held, e.Err, owner, e.Counter)
}

func (e *LeaseError) Unwrap() error { return e.Err }
