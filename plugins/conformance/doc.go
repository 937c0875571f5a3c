// Package conformance checks a WebAssembly plugin against ABI v1
// (plugins/abi/ABI.md): that it loads under the host's sandbox (exports and
// their types, imports, abi_version, describe, init) and that each kind it
// declares behaves: serializers round-trip sample items, aggregators
// round-trip sample records within the size limit, report oversize records
// as item errors and agree with size_alone, handlers answer one status per
// record and emit valid Kinesis records. Every output crosses the host's
// bounds-checked decoder, so an offset outside the guest's memory or the
// output's data area fails the check.
//
//	rep, err := conformance.Check(ctx, "build/plugins/kpl.wasm")
//	fmt.Print(rep.String())
//
// Check is safe for concurrent use; each call loads its own plugin.
package conformance
