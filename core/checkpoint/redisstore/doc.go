// Package redisstore is a checkpoint.Store in Redis (github.com/redis/go-redis/v9),
// for consumers of one stream spread over processes and hosts.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	store, err := redisstore.New(rdb, "my-app", "my-stream",
//		redisstore.WithSessionTimeout(60*time.Second),
//		redisstore.WithHeartbeatFrequency(15*time.Second))
//
// # Data model
//
// Every key starts with the prefix (WithKeyPrefix, default "shardwork:")
// and a hash tag made of the application and stream, so one (application,
// stream) lives in one Redis Cluster slot and the multi-key scripts work on
// a cluster:
//
//	shardwork:{6:my-app:my-stream}:lease:<shard>  hash: owner, counter, expires, seq, sub, complete, finished
//	shardwork:{6:my-app:my-stream}:shards         set of shard ids (Leases)
//	shardwork:{6:my-app:my-stream}:workers        sorted set: worker id -> registration expiry
//
// Lease hashes never expire (a checkpoint must outlive its lease); only the
// worker registry does.
//
// # Guarantees
//
//   - Expiry is judged by Redis: scripts read TIME and store expiry in Redis
//     milliseconds; a worker's clock is never compared with another's.
//   - Take, renew, release and checkpoint are Lua compare-and-sets on
//     (owner, fencing counter); the counter is incremented on every take, so
//     a worker whose lease was taken gets checkpoint.ErrLeaseLost and its
//     write has no effect.
//   - A checkpoint never goes backwards (the script compares sequence
//     numbers as decimal integers, as checkpoint.Merge does) and Finished,
//     once set, stays.
//   - A Redis error, or a stored value that does not parse, is returned as an
//     error, never as "no checkpoint" or "lease held".
//   - HeartbeatAll registers the worker, drops expired workers, counts the
//     live ones and renews every lease the worker holds in one script call:
//     one round trip per heartbeat whatever the shard count.
//
// go-redis retries a command after a network error (Options.MaxRetries).
// The scripts are safe to repeat: a repeated take or renew by the owner is
// a take or renew; a repeated release reports ErrLeaseLost for a lease that
// the first attempt released.
//
// # Concurrency and shutdown
//
// A Store is safe for concurrent use and owns no goroutines; the Redis
// client is the caller's to close. A consumer that stops should Release its
// leases and Leave the registry.
package redisstore
