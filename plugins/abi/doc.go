// Package abi defines version 1 of the shardwork WebAssembly plugin ABI: the
// export and import names, the plugin kinds, and the binary batch encoding
// that crosses the host/guest boundary (one call per batch). ABI.md in this
// directory is the normative, language-neutral specification; this package is
// its Go implementation, shared by the host (plugins/host) and the Go guest
// SDK (plugins/abi/guest). It is pure Go with no dependency on a runtime.
//
// Encoding and decoding:
//
//	var in abi.Batch
//	in.Reset(abi.OpHandle)
//	in.Records = append(in.Records, abi.Record{Data: []byte(`{"a":1}`)})
//	buf, _ := in.Append(nil)
//	var out abi.Batch
//	err := abi.Decode(buf, &out) // out's byte fields alias buf
//
// Decode never panics and rejects any offset outside the data area. Batch
// values are not safe for concurrent use; the functions are.
package abi
