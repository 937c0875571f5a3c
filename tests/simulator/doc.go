// Package simulator is an in-process reverse proxy in front of a local
// Kinesis (kinesalite) that enforces the per-shard throughput limits of
// AWS Kinesis Data Streams, which kinesalite itself does not enforce.
//
// Writes are limited per shard to Limits.WriteRecordsPerSec records and
// Limits.WriteBytesPerSec bytes (data plus partition key) per second, as AWS
// does (1,000 records and 1 MiB). A PutRecords call whose entries exceed the
// limit gets, as from AWS, a 200 result in which each refused entry carries
// ErrorCode ProvisionedThroughputExceededException and an ErrorMessage, with
// FailedRecordCount set; only the admitted entries are forwarded upstream and
// their results are merged back in request order. A refused PutRecord gets a
// 400 ProvisionedThroughputExceededException.
//
// Reads are limited per shard to Limits.ReadCallsPerSec GetRecords calls
// (AWS: 5) and Limits.ReadBytesPerSec bytes (AWS: 2 MiB). Like AWS, the bytes
// of a GetRecords response are charged after the response, so one large read
// succeeds and the calls that follow are throttled until the debt is repaid.
// A GetRecords call's shard is known from its shard iterator: the simulator
// remembers the iterators returned by GetShardIterator and GetRecords.
//
// Records are routed to shards as Kinesis routes them: the MD5 of the
// partition key (or the ExplicitHashKey) read as a 128-bit big-endian
// integer, looked up in the open shards' hash-key ranges, learnt from the
// upstream with ListShards and refreshed when a stream or shard is unknown
// or the upstream stores a record on a different shard than predicted.
//
// Each limit is a token bucket that refills at its rate and holds at most
// Limits.Burst worth of it (one second by default), so over any interval T a
// shard admits at most rate×(Burst+T). The clock is injectable (WithClock,
// NewFakeClock) for deterministic tests. Every other operation is passed
// through unchanged.
//
// Stats reports, per stream and shard, what was admitted and refused, and
// InjectPutFailure makes the next n written entries fail with a given error
// code, to test a producer's retries.
//
// In a test:
//
//	env := harness.Kinesis(t)
//	stream := env.NewStream(t, 4)
//	sim := simulator.Start(t, env.Endpoint, simulator.DefaultLimits())
//	client, _ := harness.NewClient(ctx, sim.Endpoint())
//	// ... write and read through client ...
//	st := sim.Stats(stream) // st.Shards[i].AdmittedRecords, st.Total.RefusedRecords, ...
//
// The simulator speaks the Kinesis JSON protocol (application/x-amz-json-1.1),
// which the AWS SDK for Go v2 uses; limited operations sent as CBOR are
// answered with an error.
package simulator
