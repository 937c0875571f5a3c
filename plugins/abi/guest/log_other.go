//go:build !wasip1

package guest

// Log discards msg outside WebAssembly (native tests of plugin logic).
func Log(level int, msg string) {}
