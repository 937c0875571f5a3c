// Package examples holds no code: each subdirectory is one example plugin
// (a main package built with GOOS=wasip1 GOARCH=wasm go build
// -buildmode=c-shared, see make plugins):
//
//   - kpl: KPL aggregator/deaggregator, byte-identical to the reference
//     aggregator (testdata/kpl/reference_vectors.json).
//   - msgpack: msgpack serializer and netstring aggregator, byte-compatible
//     with async-kinesis' MsgpackProcessor.
//   - enrich: record handler that skips, enriches and routes JSON records.
//
// plugins/examples-rust/upper is the same ABI implemented in Rust with no
// crates (wasm32-unknown-unknown, about 25 KB).
package examples
