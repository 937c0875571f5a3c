package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/shardwork/shardwork/plugins/abi"
)

var (
	cachesMu sync.Mutex
	caches   = map[string]wazero.CompilationCache{}
)

// cacheFor returns the process-wide compilation cache for dir, so plugins
// loaded from the same dir share compiled code in memory as well as on disk.
func cacheFor(dir string) (wazero.CompilationCache, error) {
	cachesMu.Lock()
	defer cachesMu.Unlock()
	if c, ok := caches[dir]; ok {
		return c, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("compilation cache %s: %w", dir, err)
	}
	caches[dir] = c
	return c, nil
}

func readModule(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Plugin: path, Op: "load", Err: fmt.Errorf("%w: %s", ErrNotFound, path)}
	}
	if err != nil {
		return nil, &Error{Plugin: path, Op: "load", Err: err}
	}
	return b, nil
}

// Compile compiles the plugin at wasmPath into the on-disk compilation cache
// in cacheDir, so that a later Load with WithCacheDir(cacheDir) skips
// compilation (for example in a Lambda image built ahead of time). Sandboxed
// and trusted modes compile to different code (the sandbox adds termination
// checks), so both are cached.
func Compile(ctx context.Context, wasmPath, cacheDir string) error {
	code, err := readModule(wasmPath)
	if err != nil {
		return err
	}
	cache, err := cacheFor(cacheDir)
	if err != nil {
		return &Error{Plugin: wasmPath, Op: "compile", Err: err}
	}
	for _, sandboxed := range []bool{true, false} {
		r := wazero.NewRuntimeWithConfig(ctx, runtimeConfig(sandboxed, 0).WithCompilationCache(cache))
		_, err := r.CompileModule(ctx, code)
		r.Close(ctx)
		if err != nil {
			return &Error{Plugin: wasmPath, Op: "compile", Err: fmt.Errorf("%w: %v", ErrInvalidModule, err)}
		}
	}
	return nil
}

// runtimeConfig is the wazero configuration of a plugin; Compile and Load
// must agree on everything that changes the compiled code.
func runtimeConfig(sandboxed bool, memoryPages uint32) wazero.RuntimeConfig {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(sandboxed)
	if memoryPages > 0 {
		rc = rc.WithMemoryLimitPages(memoryPages)
	}
	return rc
}

// Plugin is a loaded plugin: one compiled module and a bounded pool of
// instances. Its methods and adapters are safe for concurrent use; at most
// the pool size of calls run at once.
type Plugin struct {
	cfg      config
	path     string
	desc     abi.Description
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	hasInit  bool // exports _initialize
	log      *slog.Logger

	idle   chan *instance // healthy idle instances
	slots  chan struct{}  // free instance slots: live + free = pool size
	closed chan struct{}  // closed by Close
	once   sync.Once
	nextID atomic.Uint64

	// sizes remembers size_alone answers (key: sizeKey); sizesLen counts
	// stores, to bound it.
	sizes    sync.Map
	sizesLen atomic.Int64

	brMu        sync.Mutex
	brFails     int
	brOpenUntil time.Time
	brLast      error

	stats Stats
}

// Stats counts what happened to a plugin's instances and calls.
type Stats struct {
	Calls        atomic.Int64 // guest entry-point calls
	Failures     atomic.Int64 // failed guest calls (trap, deadline, batch error, invalid output)
	Instantiated atomic.Int64
	Discarded    atomic.Int64 // instances thrown away after a failure
	Recycled     atomic.Int64 // instances replaced after N calls or memory growth
	Isolated     atomic.Int64 // records isolated by bisection
}

// Load compiles (or fetches from the cache) the plugin at path, checks its
// imports and exports against ABI v1, instantiates one instance to check
// abi_version, describe and init, and returns the plugin ready for use.
func Load(ctx context.Context, path string, opts ...Option) (*Plugin, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	code, err := readModule(path)
	if err != nil {
		return nil, err
	}
	rc := runtimeConfig(!cfg.trusted, cfg.memoryPages)
	if cfg.cacheDir != "" {
		cache, err := cacheFor(cfg.cacheDir)
		if err != nil {
			return nil, &Error{Plugin: path, Op: "load", Err: err}
		}
		rc = rc.WithCompilationCache(cache)
	}
	p := &Plugin{
		cfg: cfg, path: path, log: cfg.logger,
		idle: make(chan *instance, cfg.poolSize), slots: make(chan struct{}, cfg.poolSize),
		closed: make(chan struct{}),
	}
	p.desc.Name = path
	p.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := p.setup(ctx, code); err != nil {
		p.rt.Close(ctx)
		return nil, err
	}
	return p, nil
}

func (p *Plugin) loadErr(err error) error { return &Error{Plugin: p.desc.Name, Op: "load", Err: err} }

func (p *Plugin) setup(ctx context.Context, code []byte) error {
	compiled, err := p.rt.CompileModule(ctx, code)
	if err != nil {
		return p.loadErr(fmt.Errorf("%w: %v", ErrInvalidModule, err))
	}
	p.compiled = compiled
	if err := p.checkImports(); err != nil {
		return p.loadErr(err)
	}
	if err := checkExports(compiled, abi.CommonExports); err != nil {
		return p.loadErr(err)
	}
	if _, ok := compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		return p.loadErr(fmt.Errorf("%w: no exported memory %q", ErrMissingExport, abi.ExportMemory))
	}
	_, p.hasInit = compiled.ExportedFunctions()[abi.ExportInitialize]
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return p.loadErr(err)
	}
	if _, err := p.rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.hostLog), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).
		WithParameterNames("level", "ptr", "len").Export(abi.ImportLog).
		Instantiate(ctx); err != nil {
		return p.loadErr(err)
	}
	// The first instance checks the version and learns the description.
	inst, err := p.instantiate(ctx, true)
	if err != nil {
		return err
	}
	for _, k := range p.desc.Kinds {
		if err := checkExports(compiled, k.Exports()); err != nil {
			inst.close(ctx)
			return p.loadErr(fmt.Errorf("declares kind %s but: %w", k, err))
		}
	}
	for _, k := range p.cfg.kinds {
		if !p.desc.Has(k) {
			inst.close(ctx)
			return p.loadErr(fmt.Errorf("%w: is %s, not %s", ErrWrongKind, kindList(p.desc.Kinds), k))
		}
	}
	for range p.cfg.poolSize - 1 {
		p.slots <- struct{}{}
	}
	p.idle <- inst
	return nil
}

func kindList(ks []abi.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return "a " + strings.Join(s, " and ")
}

func (p *Plugin) checkImports() error {
	for _, f := range p.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch {
		case mod == "wasi_snapshot_preview1":
		case mod == abi.ImportModule:
			if name != abi.ImportLog {
				return fmt.Errorf("%w: %s.%s is not provided by the host", ErrForbiddenImport, mod, name)
			}
		case strings.HasPrefix(mod, abi.ImportModulePrefix):
			v, err := strconv.Atoi(strings.TrimPrefix(mod, abi.ImportModulePrefix))
			if err == nil {
				return fmt.Errorf("%w: built for ABI v%d (imports %s), this host supports v%d", ErrABIVersion, v, mod, abi.Version)
			}
			return fmt.Errorf("%w: unknown host module %s", ErrForbiddenImport, mod)
		default:
			return fmt.Errorf("%w: %s.%s (only wasi_snapshot_preview1 and %s are granted)", ErrForbiddenImport, mod, name, abi.ImportModule)
		}
	}
	return nil
}

var signatures = map[string][2][]api.ValueType{
	abi.ExportABIVersion:  {nil, {api.ValueTypeI32}},
	abi.ExportReserve:     {{api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportDescribe:    {nil, {api.ValueTypeI64}},
	abi.ExportInit:        {{api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportLastError:   {nil, {api.ValueTypeI64}},
	abi.ExportSerialize:   {{api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportDeserialize: {{api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportAggregate:   {{api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportDeaggregate: {{api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportHandle:      {{api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportSizeAlone:   {{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
}

func sig(ts []api.ValueType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = api.ValueTypeName(t)
	}
	return "(" + strings.Join(s, ", ") + ")"
}

func checkExports(m wazero.CompiledModule, names []string) error {
	fns := m.ExportedFunctions()
	for _, n := range names {
		f, ok := fns[n]
		if !ok {
			return fmt.Errorf("%w: no exported function %q", ErrMissingExport, n)
		}
		want := signatures[n]
		if sig(f.ParamTypes()) != sig(want[0]) || sig(f.ResultTypes()) != sig(want[1]) {
			return fmt.Errorf("%w: %q has type %s -> %s, want %s -> %s", ErrMissingExport, n,
				sig(f.ParamTypes()), sig(f.ResultTypes()), sig(want[0]), sig(want[1]))
		}
	}
	return nil
}

// Description is what the plugin's describe export returned.
func (p *Plugin) Description() abi.Description { return p.desc }

// Name is the plugin's name from describe.
func (p *Plugin) Name() string { return p.desc.Name }

// Trusted reports whether the plugin runs without per-call deadlines.
func (p *Plugin) Trusted() bool { return p.cfg.trusted }

// Stats returns the plugin's counters.
func (p *Plugin) Stats() *Stats { return &p.stats }

// Close stops new calls, waits for running ones to return their instances
// (or for ctx), and frees the runtime.
func (p *Plugin) Close(ctx context.Context) error {
	p.once.Do(func() { close(p.closed) })
	// Every slot is either free or held by a live instance; collect them all.
	for range cap(p.slots) {
		select {
		case inst := <-p.idle:
			inst.close(ctx)
		case <-p.slots:
		case <-ctx.Done():
			p.rt.Close(context.Background())
			return ctx.Err()
		}
	}
	return p.rt.Close(ctx)
}

func (p *Plugin) hostLog(ctx context.Context, m api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if n > 64<<10 {
		n = 64 << 10
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		p.log.Warn("plugin log call with out-of-bounds message", "ptr", ptr, "len", n)
		return
	}
	p.log.Log(ctx, slog.Level(level), string(b))
}

// nowCtx builds the per-call context: the sandbox deadline, or ctx as is
// when trusted.
func (p *Plugin) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.trusted {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.cfg.callTimeout)
}
