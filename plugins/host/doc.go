// Package host runs shardwork WebAssembly plugins (ABI v1, see
// plugins/abi/ABI.md) with wazero and adapts them to the core interfaces:
// a serializer plugin is a records.Serializer, an aggregator plugin a
// records.Aggregator, a handler plugin a records.Handler, so the producer and
// the consumer cannot tell a plugin from a native implementation.
//
//	p, err := host.Load(ctx, "kpl.wasm", host.WithCacheDir("/tmp/wazero"))
//	if err != nil {
//		return err // names the file and what is wrong: missing, not wasm, ABI version, missing export...
//	}
//	defer p.Close(ctx)
//	agg, err := p.Aggregator() // ErrWrongKind if kpl.wasm is not an aggregator
//
// Load compiles the module (or takes it from the on-disk compilation cache
// that Compile fills ahead of time, e.g. when building a Lambda image),
// checks its imports and exports, and instantiates one instance to check
// abi_version, read describe and run init with WithConfig's JSON.
//
// Isolation. Each instance gets WASI with no preopened directories, no
// environment, no arguments and no network; its stdout and stderr go to the
// logger (WithLogger), bounded per call (WithMaxOutputBytes). Memory is
// capped (WithMemoryLimitPages). In the default sandboxed mode every call
// has a deadline (WithCallTimeout) enforced by wazero's close-on-context-done;
// WithTrusted drops it for vetted plugins, which makes calls and guest loops
// faster: 2–4× for Go guests, whose every taken branch passes wazero's
// termination check (plugins/BENCHMARKS.md).
//
// Failures. A trap, a deadline, a guest panic (a batch error), or an output
// that fails the bounds-checked decoder discards the instance. The batch is
// retried once on another instance, then bisected: records the guest fails
// on even alone are reported as per-item errors (records.ItemErrors for
// serializers and aggregators, StatusFail results for handlers) while the
// rest of the batch succeeds. An operation that fails as a whole (or loses
// every record) counts towards the circuit breaker (WithCircuitBreaker);
// once open, calls fail fast with ErrCircuitOpen naming the plugin.
//
// Concurrency. A Plugin keeps a bounded pool of instances (WithPoolSize) in
// a channel; each call takes one instance, so an instance is never used by
// two goroutines at once. Function handles are looked up once per instance.
// Instances are recycled after a number of calls or when their memory grows
// past a bound (WithRecycle). All methods of Plugin and of its adapters are
// safe for concurrent use. Close waits for running calls to return their
// instances (or for its ctx), then frees the runtime; later calls return
// ErrClosed.
package host
