package host

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/shardwork/shardwork/plugins/abi"
)

// instance is one instantiated module with its function handles looked up
// once. It is used by one goroutine at a time (whoever took it from the
// pool).
type instance struct {
	id      uint64
	mod     api.Module
	mem     api.Memory
	reserve api.Function
	lastErr api.Function
	fns     map[abi.Op]api.Function
	size    api.Function
	calls   int
	out     *lineWriter
}

func (inst *instance) close(ctx context.Context) {
	inst.out.flush()
	_ = inst.mod.Close(ctx)
}

// instantiate makes a new instance. first is true for the instance Load
// makes, which checks abi_version and learns the description.
func (p *Plugin) instantiate(ctx context.Context, first bool) (*instance, error) {
	id := p.nextID.Add(1)
	out := newLineWriter(p, id)
	mc := wazero.NewModuleConfig().WithName("").
		WithStdout(out).WithStderr(out).
		WithSysWalltime().WithSysNanotime().WithRandSource(crand.Reader).
		WithStartFunctions() // _initialize is called below, under the deadline
	cctx, cancel := context.WithTimeout(ctx, p.cfg.initTimeout)
	defer cancel()
	mod, err := p.rt.InstantiateModule(cctx, p.compiled, mc)
	if err != nil {
		return nil, p.loadErr(fmt.Errorf("instantiate: %w", err))
	}
	p.stats.Instantiated.Add(1)
	inst := &instance{id: id, mod: mod, mem: mod.Memory(), out: out, fns: map[abi.Op]api.Function{}}
	fail := func(err error) (*instance, error) {
		inst.close(ctx)
		return nil, p.loadErr(err)
	}
	if p.hasInit {
		if _, err := mod.ExportedFunction(abi.ExportInitialize).Call(cctx); err != nil {
			return fail(fmt.Errorf("_initialize: %w", describeTrap(err, cctx)))
		}
	}
	res, err := mod.ExportedFunction(abi.ExportABIVersion).Call(cctx)
	if err != nil {
		return fail(fmt.Errorf("abi_version: %w", describeTrap(err, cctx)))
	}
	if v := int32(res[0]); v != abi.Version {
		return fail(fmt.Errorf("%w: abi_version() returned %d, this host supports %d", ErrABIVersion, v, abi.Version))
	}
	inst.reserve = mod.ExportedFunction(abi.ExportReserve)
	inst.lastErr = mod.ExportedFunction(abi.ExportLastError)
	if first {
		res, err := mod.ExportedFunction(abi.ExportDescribe).Call(cctx)
		if err != nil {
			return fail(fmt.Errorf("describe: %w", describeTrap(err, cctx)))
		}
		b, err := inst.read(res[0], "describe")
		if err != nil {
			return fail(err)
		}
		d, err := abi.ParseDescription(b)
		if err != nil {
			return fail(err)
		}
		p.desc = d
		p.log = p.cfg.logger.With("plugin", d.Name)
	}
	for op, name := range map[abi.Op]string{
		abi.OpSerialize: abi.ExportSerialize, abi.OpDeserialize: abi.ExportDeserialize,
		abi.OpAggregate: abi.ExportAggregate, abi.OpDeaggregate: abi.ExportDeaggregate, abi.OpHandle: abi.ExportHandle,
	} {
		if f := mod.ExportedFunction(name); f != nil {
			inst.fns[op] = f
		}
	}
	inst.size = mod.ExportedFunction(abi.ExportSizeAlone)
	// init with the plugin's configuration.
	ptr, err := inst.input(cctx, len(p.cfg.pluginConfig))
	if err != nil {
		return fail(fmt.Errorf("init: %w", err))
	}
	inst.mem.Write(ptr, p.cfg.pluginConfig)
	res, err = mod.ExportedFunction(abi.ExportInit).Call(cctx, uint64(len(p.cfg.pluginConfig)))
	if err != nil {
		return fail(fmt.Errorf("init: %w", describeTrap(err, cctx)))
	}
	if int32(res[0]) != 0 {
		return fail(fmt.Errorf("%w: %s", ErrInit, inst.lastError(cctx)))
	}
	inst.out.endCall()
	return inst, nil
}

// read returns the guest memory a packed result points at, checking bounds.
func (inst *instance) read(packed uint64, what string) ([]byte, error) {
	ptr, n := abi.Unpack(packed)
	b, ok := inst.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%s returned [%d, %d), outside the guest's %d-byte memory", what, ptr, uint64(ptr)+uint64(n), inst.mem.Size())
	}
	return b, nil
}

// input reserves n bytes of guest memory for the next call's input.
func (inst *instance) input(ctx context.Context, n int) (uint32, error) {
	if n > abi.MaxBatchSize {
		return 0, abi.ErrTooLarge
	}
	res, err := inst.reserve.Call(ctx, uint64(n))
	if err != nil {
		return 0, describeTrap(err, ctx)
	}
	ptr := uint32(res[0])
	if ptr == 0 && n > 0 {
		return 0, fmt.Errorf("reserve(%d) returned 0 (guest out of memory?)", n)
	}
	if uint64(ptr)+uint64(n) > uint64(inst.mem.Size()) {
		return 0, fmt.Errorf("reserve(%d) returned [%d, %d), outside the guest's %d-byte memory", n, ptr, uint64(ptr)+uint64(n), inst.mem.Size())
	}
	return ptr, nil
}

func (inst *instance) lastError(ctx context.Context) string {
	res, err := inst.lastErr.Call(ctx)
	if err != nil {
		return "(last_error failed: " + describeTrap(err, ctx).Error() + ")"
	}
	if res[0] == 0 {
		return "(no message)"
	}
	b, err := inst.read(res[0], "last_error")
	if err != nil {
		return "(" + err.Error() + ")"
	}
	const max = 4 << 10
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// describeTrap turns a wazero call error into a message that says what the
// guest did: ran past its deadline, exited, or trapped.
func describeTrap(err error, ctx context.Context) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("deadline exceeded: the guest ran past its call timeout and was stopped")
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("canceled: %w", context.Canceled)
		}
		return fmt.Errorf("guest exited with code %d (a Go guest exits 2 on a fatal error such as out of memory)", exit.ExitCode())
	}
	msg := err.Error()
	if ctx.Err() != nil {
		return fmt.Errorf("%s (context: %w)", condense(msg), ctx.Err())
	}
	return errors.New(condense(msg))
}

// condense shortens wazero's trap message ("wasm error: unreachable" plus a
// stack trace) to the error and the innermost frames outside the runtime,
// so an error line stays readable.
func condense(msg string) string {
	head, trace, ok := strings.Cut(msg, "\nwasm stack trace:\n")
	head = strings.TrimPrefix(head, "wasm error: ")
	if !ok {
		return "trap: " + head
	}
	var frames []string
	for _, f := range strings.Split(trace, "\n") {
		f = strings.TrimSpace(f)
		f = strings.TrimPrefix(f, ".")
		if i := strings.IndexByte(f, '('); i > 0 {
			f = f[:i]
		}
		if f == "" {
			continue
		}
		frames = append(frames, f)
		if len(frames) == 6 {
			break
		}
	}
	return "trap: " + head + " in " + strings.Join(frames, " <- ")
}

// acquire takes an idle instance or makes a new one within the pool bound.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	select {
	case <-p.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	case <-p.slots:
		inst, err := p.instantiate(ctx, false)
		if err != nil {
			p.slots <- struct{}{}
			return nil, err
		}
		return inst, nil
	case <-p.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns inst to the pool, or discards it when it failed, has
// served its calls or grew past the memory bound.
func (p *Plugin) release(ctx context.Context, inst *instance, failed bool) {
	inst.out.endCall()
	if failed || inst.calls >= p.cfg.recycleCalls || inst.mem.Size() > p.cfg.recycleMemory {
		if failed {
			p.stats.Discarded.Add(1)
		} else {
			p.stats.Recycled.Add(1)
		}
		inst.close(context.WithoutCancel(ctx))
		p.slots <- struct{}{}
		return
	}
	p.idle <- inst
}
