package checkpoint

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrLeaseLost means the caller no longer owns the lease: another worker
	// took it (the fencing counter moved on) or it was released. The write
	// that returned it had no effect; the caller must stop the shard.
	ErrLeaseLost = errors.New("lease lost")
	// ErrLeaseHeld means another worker holds a live lease on the shard.
	ErrLeaseHeld = errors.New("lease held by another worker")
)

// Checkpoint is how far a shard has been processed. The zero value means
// "nothing processed yet".
type Checkpoint struct {
	// SequenceNumber of the last Kinesis record (partly) finished; "" if none.
	SequenceNumber string
	// SubSequenceNumber is the highest contiguous finished user record
	// inside that Kinesis record (aggregated records hold several).
	SubSequenceNumber int64
	// Complete is true when every user record of SequenceNumber is finished,
	// so reading resumes AFTER_SEQUENCE_NUMBER; otherwise it resumes
	// AT_SEQUENCE_NUMBER and skips sub-sequences ≤ SubSequenceNumber.
	Complete bool
	// Finished is true once the shard reached SHARD_END and everything in it
	// was processed: its children may start.
	Finished bool
}

// Lease is a worker's claim on one shard. Counter is the fencing token: every
// take increments it, and every write is a compare-and-set on (Owner,
// Counter), so a worker that lost the lease cannot write.
type Lease struct {
	Shard   string
	Owner   string
	Counter int64
	// Checkpoint is the shard's checkpoint when the lease was taken.
	Checkpoint Checkpoint
}

// LeaseInfo is the state of one shard's lease as the store sees it.
type LeaseInfo struct {
	Shard   string
	Owner   string // "" when free
	Counter int64
	// Expires is when the lease lapses unless renewed (as judged by the
	// store's clock, never the worker's).
	Expires time.Time
	// Live is true when Owner holds the lease and it has not expired (as
	// judged by the store's clock). A lease that is not live may be taken.
	Live       bool
	Checkpoint Checkpoint
}

// Store keeps leases and checkpoints for one (application, stream). Every
// method is safe for concurrent use. Implementations pass the conformance
// suite in this package.
type Store interface {
	// WorkerID is this store's worker identity (unique per process).
	WorkerID() string
	// Heartbeat announces this worker as live and returns how many workers
	// are live (including this one).
	Heartbeat(ctx context.Context) (liveWorkers int, err error)
	// Take acquires the shard's lease when it is free, expired, or already
	// this worker's, incrementing the fencing counter. It returns
	// ErrLeaseHeld when another worker holds a live lease.
	Take(ctx context.Context, shard string) (Lease, error)
	// Renew extends the lease; ErrLeaseLost if it is no longer ours.
	Renew(ctx context.Context, l Lease) error
	// Checkpoint records progress under the lease; ErrLeaseLost if it is no
	// longer ours. A checkpoint behind the stored one leaves it unchanged.
	Checkpoint(ctx context.Context, l Lease, c Checkpoint) error
	// Release gives the lease up, keeping the checkpoint for the next owner;
	// ErrLeaseLost if it was no longer ours.
	Release(ctx context.Context, l Lease) error
	// Get reads a shard's checkpoint (zero value if none). A backend failure
	// is an error, never "no checkpoint".
	Get(ctx context.Context, shard string) (Checkpoint, error)
	// Leases lists every shard lease the store knows for this stream.
	Leases(ctx context.Context) ([]LeaseInfo, error)
}
