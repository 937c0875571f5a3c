// Package shards is shardwork's Kinesis consumer: it leases shards through a
// checkpoint.Store, runs one fetch loop per leased shard, unpacks and
// decodes records with a records.Processor, delivers them to an iterator or
// a batch handler, and checkpoints only what was finished.
//
//	client, _ := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{Region: "eu-west-1"})
//	store, _ := redisstore.New(redisClient, "billing", "orders")
//	c, err := shards.New(client, "orders", shards.Checkpointer(store),
//		shards.Processor(records.KPLJSONProcessor()))
//	if err != nil { ... }
//	for rec, err := range c.Records(ctx) {
//		if err != nil { return err } // fatal: missing stream, retry limit
//		handle(rec.ShardID, rec.SequenceNumber, rec.Value)
//	} // a record is finished when the loop body returns for it
//
// or, with per-record verdicts (OK, RETRY, FAIL, SKIP):
//
//	err = c.Run(ctx, handler) // records.Handler, batches of MaxBatchSize
//
// # Delivery
//
// Delivery is at least once. Each shard's checkpoint is the highest
// contiguous finished (sequence number, sub-sequence number), so a restart
// resumes after the last finished record, also in the middle of an
// aggregated record (AT_SEQUENCE_NUMBER, skipping the finished
// sub-sequences). Records of one shard are delivered in order. A record
// that cannot be unpacked or decoded goes to the ErrorCallback as a
// *RecordError wrapping ErrDecode, is counted in Stats, and counts as
// finished: the shard never stalls on it.
//
// # Shards and limits
//
// One goroutine owns each leased shard: it gets records at most
// ShardFetchRate times a second and within 2 MiB/s (the Kinesis limits per
// shard), sleeps SleepWhenCaughtUp only when that shard is caught up, and
// blocks while the delivery queue (MaxQueueSize records) is full, so
// nothing is dropped and the iterator never moves past undelivered
// records. Expired iterators are renewed after the last fetched record;
// throttling backs off with capped, jittered exponential delays. The
// shard list is read with paginated ListShards, refreshed every
// ShardListInterval and whenever a shard ends; a child shard starts only
// when all its parents are finished (or no longer listed), and a shard at
// SHARD_END is checkpointed as finished and its lease released.
//
// # Leases
//
// Every LeaseInterval (default: the store's heartbeat frequency) one
// goroutine heartbeats and renews every lease the consumer holds (in one
// round trip with a checkpoint.BatchRenewer), so slow Kinesis calls never
// delay a renewal; another lists the shards, gives up shards above the
// consumer's fair share (ceil(shards / live workers)) and takes free or
// expired ones up to it. A lease whose renewal or checkpoint is refused
// with checkpoint.ErrLeaseLost stops its shard at once; its undelivered
// records are dropped for the new owner to read. With a store that reports
// its session timeout (checkpoint.Timing), no record is delivered after
// the lease may have lapsed (the last successful renewal plus the session
// timeout): the shard stops instead and is taken again if it is still
// free. When the store is unreachable the consumer keeps reading until
// then and reports the errors; a shard it takes again resumes after the
// records it had finished itself, even if the stored checkpoint is behind,
// so nothing is skipped and little is repeated.
//
// # Concurrency and shutdown
//
// A Consumer is safe for concurrent use; one Records or Run loop runs at a
// time. New starts nothing. When the loop's ctx is cancelled, the loop
// body breaks, or Close is called, fetching stops, the records in flight
// finish, final checkpoints are written and leases released (bounded by
// ShutdownTimeout) before Records or Run returns. A Kinesis call already
// sent is allowed to finish (within ShutdownTimeout) rather than being
// aborted halfway. Close waits for that;
// after it, Records and Run return ErrClosed.
package shards
