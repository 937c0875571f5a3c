package host

import (
	"errors"
	"fmt"
)

// Sentinels that Load and calls wrap; branch on them with errors.Is.
var (
	// ErrNotFound: the plugin file does not exist.
	ErrNotFound = errors.New("plugin file not found")
	// ErrInvalidModule: the file is not a valid WebAssembly module.
	ErrInvalidModule = errors.New("not a valid WebAssembly module")
	// ErrABIVersion: the plugin was built for another ABI version.
	ErrABIVersion = errors.New("unsupported ABI version")
	// ErrMissingExport: a required export is absent or has the wrong type.
	ErrMissingExport = errors.New("missing or mistyped export")
	// ErrForbiddenImport: the plugin imports something the host does not grant.
	ErrForbiddenImport = errors.New("forbidden import")
	// ErrWrongKind: the plugin does not implement the kind asked for.
	ErrWrongKind = errors.New("wrong plugin kind")
	// ErrInit: the plugin's init rejected its configuration.
	ErrInit = errors.New("plugin init failed")
	// ErrPluginFailed: a call trapped, timed out, panicked, returned a batch
	// error or returned invalid output.
	ErrPluginFailed = errors.New("plugin call failed")
	// ErrCircuitOpen: the plugin failed too many operations in a row.
	ErrCircuitOpen = errors.New("plugin circuit breaker open")
	// ErrClosed: the plugin was closed.
	ErrClosed = errors.New("plugin closed")
)

// Error is an error about one plugin; its message names the plugin and the
// operation.
type Error struct {
	Plugin string // name from describe, or the file path before describe
	Op     string // "load", "serialize", "handle", ...
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("plugin %q: %s: %v", e.Plugin, e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// callError is one failed guest call, before retry and bisection decide
// what the caller sees.
type callError struct {
	what string // "trap", "deadline exceeded", "batch error", "invalid output", ...
	err  error
}

func (e *callError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *callError) Unwrap() []error { return []error{ErrPluginFailed, e.err} }
