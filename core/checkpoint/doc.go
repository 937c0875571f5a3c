// Package checkpoint is shardwork's lease and checkpoint contract: a Store
// hands out per-shard leases with fencing counters, keeps each shard's
// checkpoint, and keeps a registry of live workers so each takes a fair
// share of the shards.
//
// Two stores implement it: Memory (the default, one process; several
// consumers in one process share a MemoryBackend) and, in the redisstore
// subpackage, a Redis store for consumers spread over processes and hosts.
// Both pass the conformance suite in checkpointtest.
//
//	store, err := checkpoint.NewMemory("my-app", "my-stream")
//	lease, err := store.Take(ctx, "shardId-000000000000")
//	// ... process records after lease.Checkpoint ...
//	err = store.Checkpoint(ctx, lease, checkpoint.Checkpoint{SequenceNumber: seq, Complete: true})
//	if errors.Is(err, checkpoint.ErrLeaseLost) {
//		// another worker owns the shard now: stop processing it
//	}
//	err = store.Release(ctx, lease)
//
// # Leases and fencing
//
// Take succeeds when the shard is free, its lease expired (not renewed for
// the session timeout, judged by the store's clock), or the caller already
// holds it; every take increments the lease's fencing counter. Renew,
// Checkpoint and Release are compare-and-sets on (owner, counter): a worker
// whose lease was taken over gets a *LeaseError wrapping ErrLeaseLost and
// its write has no effect. A lease past its expiry that nobody took is
// still its owner's. A consumer renews every HeartbeatFrequency (Timing)
// and, with a BatchRenewer, renews all its leases and announces itself in
// one call.
//
// # Checkpoints
//
// A stored checkpoint never goes backwards (Merge, Compare): sequence
// numbers compare as decimal integers (CompareSequence), a Complete record
// is ahead of any sub-sequence of it, and Finished, once written, stays.
// Release keeps the checkpoint for the next owner. Get of an unknown shard
// is the zero Checkpoint; a backend failure is an error, never "no
// checkpoint".
//
// # Concurrency and shutdown
//
// Stores are safe for concurrent use and own no goroutines; there is
// nothing to close. A consumer that stops should Release its leases (and
// Leave, when the store is a Leaver) so others take them at once.
package checkpoint
