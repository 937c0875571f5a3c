// Package records defines the record types that flow through shardwork and
// the interfaces that native processors and WebAssembly plugins both
// implement: Serializer (item ↔ bytes), Aggregator (many user records ↔ one
// Kinesis record) and Handler (a batch of consumed records → per-record
// verdicts and records to emit).
//
// All interfaces are batch-oriented so that a WebAssembly implementation
// costs one call per batch, never one per record.
package records
