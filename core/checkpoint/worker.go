package checkpoint

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"time"
)

// DefaultWorkerID returns a new worker identity: the host name and a random
// 48-bit suffix ("ip-10-0-0-7-3fa9c2e1b04d"). Every call returns a
// different id, so several consumers in one process, and processes that
// all run as pid 1 in containers, never share an identity.
func DefaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, host)
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return host + "-" + hex.EncodeToString(b[:])
}

// Timing is implemented by stores whose lease timing a consumer must follow:
// renew every HeartbeatFrequency, and expect a lease not renewed for
// SessionTimeout to be taken by another worker.
type Timing interface {
	SessionTimeout() time.Duration
	HeartbeatFrequency() time.Duration
}

// BatchRenewer is implemented by stores that renew many leases at once (in
// one backend round trip for the Redis store).
type BatchRenewer interface {
	// RenewAll renews each lease; errs[i] is nil or the error for leases[i]
	// (a *LeaseError wrapping ErrLeaseLost). err is a backend failure, in
	// which case no lease is known to be renewed.
	RenewAll(ctx context.Context, leases []Lease) (errs []error, err error)
	// HeartbeatAll is Heartbeat and RenewAll together.
	HeartbeatAll(ctx context.Context, leases []Lease) (liveWorkers int, errs []error, err error)
}

// Leaver is implemented by stores that can drop a worker from the live
// worker registry at once (on a clean shutdown) instead of waiting for the
// session timeout, so the remaining workers' fair share grows sooner.
type Leaver interface {
	Leave(ctx context.Context) error
}

// FairShare is the most shards one worker should hold when live workers
// share shards: ceil(shards / live). A live count below 1 counts as 1 (the
// worker asking is alive).
func FairShare(shards, live int) int {
	if shards <= 0 {
		return 0
	}
	if live < 1 {
		live = 1
	}
	return (shards + live - 1) / live
}
