// Command rawbad is a test fixture implementing ABI v1 by hand, badly. The
// init config "mode=X" selects: oob (output pointer outside memory),
// badoffset (output field outside the data area), batcherr (every call
// fails), initfail (init rejects the config). Misbehaviour before init is
// chosen at build time with -ldflags "-X main.mode=X": abi2 (abi_version
// returns 2), badjson (describe is not JSON). Build tags remove the handle
// export (nohandle) or import shardwork_v2 (importv2).
package main

import (
	"unsafe"

	"github.com/shardwork/shardwork/plugins/abi"
)

var mode string

func main() {}

var in, out, lastErr []byte

func pack(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return abi.Pack(uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
}

//go:wasmexport abi_version
func abiVersion() int32 {
	if mode == "abi2" {
		return 2
	}
	return 1
}

//go:wasmexport reserve
func reserve(n int32) int32 {
	in = make([]byte, n+1)
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

var desc = []byte(`{"name":"rawbad","version":"0","abi":1,"kinds":["handler"]}`)

//go:wasmexport describe
func describe() uint64 {
	if mode == "badjson" {
		return pack([]byte("{not json"))
	}
	return pack(desc)
}

//go:wasmexport init
func initExport(n int32) int32 {
	if cfg := string(in[:n]); len(cfg) > 5 && cfg[:5] == "mode=" {
		mode = cfg[5:]
	}
	if mode == "initfail" {
		lastErr = []byte("config rejected: missing field \"x\"")
		return 1
	}
	return 0
}

//go:wasmexport last_error
func lastError() uint64 { return pack(lastErr) }

func handleImpl(n int32) uint64 {
	var b abi.Batch
	if err := abi.Decode(in[:n], &b); err != nil {
		lastErr = []byte(err.Error())
		return 0
	}
	switch mode {
	case "oob":
		return abi.Pack(0xFFFF0000, 4096)
	case "batcherr":
		lastErr = []byte("this plugin always fails")
		return 0
	}
	o := abi.Batch{Op: abi.OpHandle, Records: []abi.Record{{Data: []byte("x")}}}
	out, _ = o.Append(out[:0])
	if mode == "badoffset" {
		out[abi.HeaderSize] = 0xEE // data offset of the emitted record
		out[abi.HeaderSize+1] = 0xEE
	}
	return pack(out)
}
