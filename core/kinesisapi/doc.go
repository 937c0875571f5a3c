// Package kinesisapi holds the small interface over the AWS SDK's Kinesis
// client that shardwork's producer and consumer use, the hash-key maths that
// routes a partition key to a shard (MD5 read as a 128-bit integer, looked up
// in the open shards' hash-key ranges), and paginated shard listing.
//
//	shards, err := kinesisapi.ListShards(ctx, client, "orders")
//	m := kinesisapi.NewShardMap(shards)
//	shard, err := m.ShardFor("customer-42", "")
//
// ShardMap is immutable and safe for concurrent use; a reshard is handled by
// building a new one.
package kinesisapi
