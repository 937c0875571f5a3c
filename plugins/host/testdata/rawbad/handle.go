//go:build !nohandle

package main

//go:wasmexport handle
func handle(n int32) uint64 { return handleImpl(n) }
