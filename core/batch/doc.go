// Package batch is shardwork's Kinesis producer: a bounded queue in front of
// batched, per-shard rate-limited PutRecords calls with retries.
//
//	client, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{Region: "eu-west-1"})
//	p, err := batch.Open(ctx, client, "orders",
//		batch.WithProcessor(records.KPLJSONProcessor()),
//		batch.ErrorCallback(func(fr batch.FailedRecord) { log.Print(fr) }))
//	err = p.PutWithKey(ctx, order, order.CustomerID) // blocks while the queue is full
//	err = p.Close(ctx)                               // flushes; *DeliveryError names what was lost
//
// # How records travel
//
// Put serializes the item with the processor's Serializer and checks it
// against the Kinesis limits (partition key of 1..256 characters, a valid
// explicit hash key, at most 1 MiB as a Kinesis record once framed by the
// Aggregator); a record that fails is rejected at once with
// ErrInvalidRecord and nothing else is affected. Accepted records count
// against MaxQueueSize and MaxQueueBytes until they are delivered or given
// up, so memory stays bounded from Put to the end: Put blocks (until its
// context ends) and TryPut returns ErrQueueFull while the queue is full.
//
// One goroutine owns everything after Put. It predicts each record's shard
// from MD5(partition key), or its explicit hash key, with the shard map
// from ListShards, refreshed every ShardRefreshInterval and soon after
// Kinesis reports a record on another shard than predicted. Each shard has
// its own queue, its own Aggregator batches and its own sliding-window
// limiter (PutRateLimit records/s and BandwidthLimit bytes/s in any one
// second), so a stream of N shards gets N times the throughput. Records go
// when BatchSize records or 5 MiB are buffered, when the oldest buffered
// record is BufferTime old, or on Flush/Close; one PutRecords call never
// exceeds 500 records or 5 MiB, and at most MaxInFlight calls run at once.
//
// # Failures and retries
//
// Only the entries a PutRecords result marks as failed are sent again, after
// a full-jitter exponential backoff of that shard (Backoff, 100 ms doubling
// to at most 120 s); other shards go on. A ProvisionedThroughputExceeded
// entry also cuts the shard's limits multiplicatively (AIMD); each call
// without a throttle wins back a little. After RetryLimit retries a record
// is given up: it goes to the ErrorCallback and into the *DeliveryError
// returned by Close (and by a Flush that was waiting for it). Throttled entries count in Stats.Throttled while they
// are retried and become failures only past the RetryLimit. No record is
// dropped silently: each one is delivered, rejected at Put, or reported as
// failed.
//
// # Ordering
//
// With OrderPerKey (the default), records with the same partition key reach
// Kinesis in the order Put accepted them (for concurrent Puts: the order
// their calls returned), retries included. At most one Kinesis record
// holding a given partition key is in flight at a time: a shard's queue is
// sent in order up to the first record whose key is still in flight, and
// failed entries go back to the front of their shard's queue, so neither a
// later call nor a later entry of the same call can overtake a failed
// record. Records with distinct keys (the default random keys included) go
// in up to MaxInFlight concurrent calls per shard; a key that repeats costs
// one round trip per Kinesis record that holds it (aggregation packs many
// records of a key into one). Records without a key get a random one (16
// hex digits, so records spread evenly over the shards) and have no order
// among them. OrderPerKey(false) lifts the restriction. Across a reshard
// the order holds for records queued here, not for calls already made to
// the parent shard.
//
// The producer does its own retrying and throttling: give it a client whose
// SDK retryer is off (kinesisapi.NewClient does that), or the SDK's retries
// of throttled calls stack on top of the producer's backoff.
//
// # Concurrency and shutdown
//
// All methods are safe for concurrent use. New does no I/O and starts
// nothing; Start checks the stream (ErrStreamNotFound at once when it does
// not exist, unless CreateStream is set) and starts the goroutine; Close
// stops it after delivering or failing every record. When Close's context
// ends first, in-flight calls are cancelled and every record not known to
// be delivered is listed in the *DeliveryError (wrapping ErrClosed); such a
// record may still have reached Kinesis. The producer logs through the
// Logger option and is silent by default.
package batch
