//go:build importv2

package main

import "unsafe"

//go:wasmimport shardwork_v2 log
func logV2(level int32, ptr unsafe.Pointer, n int32)

func init() {
	msg := "hello"
	logV2(0, unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}
