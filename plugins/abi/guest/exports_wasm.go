//go:build wasip1

package guest

import (
	"unsafe"

	"github.com/shardwork/shardwork/plugins/abi"
)

//go:wasmimport shardwork_v1 log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

// Log writes msg to the host's log at the given slog level (-4 debug, 0
// info, 4 warn, 8 error).
func Log(level int, msg string) {
	if msg == "" {
		return
	}
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func pack(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return abi.Pack(uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
}

var descJSON []byte

//go:wasmexport abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport reserve
func exportReserve(size int32) int32 {
	if size < 0 {
		return 0
	}
	b := st.reserve(int(size) + 1) // never empty, so &b[0] is valid
	st.in = b[:size]
	return int32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmexport describe
func exportDescribe() uint64 {
	if descJSON == nil {
		descJSON = describeJSON()
	}
	return pack(descJSON)
}

//go:wasmexport init
func exportInit(n int32) int32 {
	if st.init(int(n)) {
		return 0
	}
	return 1
}

//go:wasmexport last_error
func exportLastError() uint64 { return pack(st.lastErr) }

//go:wasmexport serialize
func exportSerialize(n int32) uint64 { return pack(st.call(abi.OpSerialize, int(n), 0)) }

//go:wasmexport deserialize
func exportDeserialize(n int32) uint64 { return pack(st.call(abi.OpDeserialize, int(n), 0)) }

//go:wasmexport aggregate
func exportAggregate(n int32) uint64 { return pack(st.call(abi.OpAggregate, int(n), 0)) }

//go:wasmexport deaggregate
func exportDeaggregate(n int32) uint64 { return pack(st.call(abi.OpDeaggregate, int(n), 0)) }

//go:wasmexport handle
func exportHandle(n int32) uint64 { return pack(st.call(abi.OpHandle, int(n), 0)) }

//go:wasmexport size_alone
func exportSizeAlone(pkLen, ehkLen, dataLen int32) int32 {
	if aggregator == nil {
		return -1
	}
	return int32(aggregator.SizeAlone(int(pkLen), int(ehkLen), int(dataLen)))
}
