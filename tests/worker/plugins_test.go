package worker_test

import "testing"

// wasmSerializerPlugin returns the path of a built WebAssembly serializer
// plugin for the round trip, or "" while none is available.
func wasmSerializerPlugin(t testing.TB) string { return "" }
