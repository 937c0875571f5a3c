// Package records defines the record types that flow through shardwork and
// the interfaces that native processors and WebAssembly plugins both
// implement: Serializer (item ↔ bytes), Aggregator (many user records ↔ one
// Kinesis record) and Handler (a batch of consumed records → per-record
// verdicts and records to emit).
//
// All interfaces are batch-oriented so that a WebAssembly implementation
// costs one call per batch, never one per record.
//
// # Native processors
//
// The package holds the native processors, byte-compatible with
// async-kinesis so that either side reads the other's streams. ByName and
// Names list them:
//
//	name        serializer         aggregator          one Kinesis record holds
//	string      StringSerializer   SimpleAggregator    one UTF-8 string
//	json        JSONSerializer     SimpleAggregator    one JSON value
//	jsonlines   JSONSerializer     NewlineAggregator   JSON values, each followed by '\n'
//	jsonlist    JSONSerializer     ListAggregator      one JSON array of values
//	msgpack     MsgpackSerializer  NetstringAggregator MessagePack values framed `len:data,`
//	kpl-json    JSONSerializer     KPLAggregator       a KPL aggregated record of JSON values
//	kpl-string  StringSerializer   KPLAggregator       a KPL aggregated record of strings
//
// The JSON serializer writes what Python's json.dumps writes by default
// (", " and ": " separators, non-ASCII escaped as \uXXXX); map keys come
// out sorted. KPLAggregator reproduces the reference aggregator
// (awslabs/kinesis-aggregation) byte for byte, including where it closes an
// aggregated record.
//
// # Limits and errors
//
// Aggregate never makes a Kinesis record whose data plus partition key
// exceed maxSize. A user record that cannot fit even alone is an ItemErrors
// entry wrapping ErrTooLarge; SizeAlone lets a producer reject it before
// queueing. An item a format cannot carry (a non-string for the string
// serializer, a newline inside a JSON-lines row) wraps ErrUnsupported.
//
// Decoders never panic. Malformed input (truncated data, bad MD5, a bad
// varint or field in a KPL record, a netstring with a wrong length or
// missing comma, invalid JSON, MessagePack or UTF-8) is an ItemErrors entry
// wrapping ErrMalformed whose message says what is wrong; the batch's other
// inputs are decoded as usual. Data without the KPL magic passes through
// KPLAggregator as one non-aggregated record, as the KCL does, unless
// KPLAggregator.Strict is set.
//
// Deaggregated records copy their Kinesis record's shard, sequence number
// and arrival time, number their SubSequenceNumber from 0 and set
// Aggregated; KPL records take their partition key and explicit hash key
// from the aggregated record's tables. Their Data shares the Kinesis
// record's array.
//
// The native serializers and aggregators hold no state and are safe for
// concurrent use.
package records
