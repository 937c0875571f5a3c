// Package guest is the Go SDK for writing shardwork WebAssembly plugins. It
// implements ABI v1 (plugins/abi/ABI.md) so that a plugin author only writes
// functions over records:
//
//	package main
//
//	import "github.com/shardwork/shardwork/plugins/abi/guest"
//
//	func init() {
//		guest.Describe(guest.Info{Name: "upper", Version: "1.0.0"})
//		guest.RegisterHandler(func(r *guest.Record, emit guest.Emitter) guest.Result {
//			emit.Emit(guest.UserRecord{PartitionKey: r.PartitionKey, Data: bytes.ToUpper(r.Data)})
//			return guest.Result{Status: guest.OK}
//		})
//	}
//
//	func main() {}
//
// Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm .
//
// Registration must happen in init functions: a c-shared module runs package
// initialisers in _initialize and never calls main. A panic in the plugin's
// code is recovered and reported as a batch error through last_error; the
// host then discards the instance and isolates the offending records.
//
// Performance. A Go guest pays for every allocation and every loop
// iteration (more so in the host's sandboxed mode, where wazero checks for
// termination on each). The SDK decodes a batch in place: a Record's bytes
// and strings alias the input buffer, and records emitted or returned are
// encoded without copying their strings. Build outputs in Scratch memory,
// which lives until the call returns and is reused by the next one, to make
// no allocation per record; plugins/examples/enrich shows the pattern
// together with a JSON scan that avoids encoding/json's reflection.
//
// The exports exist only when built for wasip1. Natively, Invoke, Configure
// and DescribeJSON run the same code paths, so plugin logic can be unit
// tested with go test. The package keeps one global state per instance: the
// host never calls an instance concurrently, and Invoke is not safe for
// concurrent use.
package guest
