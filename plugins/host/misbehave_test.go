package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
)

const misbehave = "plugins/host/testdata/misbehave"

// rawbad builds the hand-written fixture; modes that act before init are
// linked in, the others are picked by the init config (one build for all).
func rawbad(t testing.TB, mode string, tags ...string) (string, []host.Option) {
	var extra []string
	var opts []host.Option
	switch mode {
	case "abi2", "badjson":
		extra = append(extra, "-ldflags=-X main.mode="+mode)
	case "":
	default:
		opts = append(opts, host.WithConfig([]byte("mode="+mode)))
	}
	if len(tags) > 0 {
		extra = append(extra, "-tags="+strings.Join(tags, ","))
	}
	return build(t, "plugins/host/testdata/rawbad", extra...), opts
}

// syncBuffer is a log sink safe for the plugin's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func batchOf(data ...string) []records.Record {
	out := make([]records.Record, len(data))
	for i, d := range data {
		out[i] = records.Record{Data: []byte(d), PartitionKey: fmt.Sprintf("pk-%d", i), SequenceNumber: fmt.Sprint(1000 + i), ShardID: "shardId-000000000000"}
	}
	return out
}

// TestPoisonRecordIsolated: a record that crashes the guest (in each of the
// ways a guest can) is isolated by retry and bisection and reported as FAIL
// naming the plugin and what happened; every other record succeeds and the
// plugin keeps working afterwards.
func TestPoisonRecordIsolated(t *testing.T) {
	cases := []struct {
		poison string
		want   string
	}{
		{"panic", "poison record 1007"},
		{"loop", "deadline exceeded"},
		{"alloc", ""},   // out of memory, or the deadline on a slow machine; see TestMemoryLimit
		{"recurse", ""}, // stack overflow or deadline, whichever comes first
		{"exit", "exited with code 3"},
		{"crash", "panic on another goroutine"},
	}
	logs := &syncBuffer{}
	p := load(t, build(t, misbehave),
		host.WithCallTimeout(300*time.Millisecond), host.WithMemoryLimitPages(1024), host.WithPoolSize(2),
		host.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	h, err := p.Handler()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.poison, func(t *testing.T) {
			data := make([]string, 16)
			for i := range data {
				data[i] = "ok"
			}
			data[7] = c.poison
			before := p.Stats().Isolated.Load()
			out, err := h.Handle(context.Background(), batchOf(data...))
			if err != nil {
				t.Fatalf("batch error %v", err)
			}
			for i, r := range out.Results {
				if i == 7 {
					if r.Status != records.StatusFail || !strings.Contains(r.Message, `plugin "misbehave"`) || !strings.Contains(r.Message, c.want) {
						t.Fatalf("poison result %v %q, want fail containing %q", r.Status, r.Message, c.want)
					}
					continue
				}
				if r.Status != records.StatusOK {
					t.Fatalf("record %d: %v %q", i, r.Status, r.Message)
				}
			}
			if len(out.Emit) != 15 {
				t.Fatalf("%d emitted, want 15", len(out.Emit))
			}
			if got := p.Stats().Isolated.Load() - before; got != 1 {
				t.Fatalf("isolated %d records, want 1", got)
			}
			// The host and the plugin carry on.
			out, err = h.Handle(context.Background(), batchOf("ok", "ok"))
			if err != nil || len(out.Emit) != 2 {
				t.Fatalf("after poison: %v %+v", err, out)
			}
		})
	}
	if !strings.Contains(logs.String(), "instance discarded") {
		t.Errorf("no discard logged:\n%s", logs.String())
	}
}

func TestSandboxDeniesFilesAndNetwork(t *testing.T) {
	p := load(t, build(t, misbehave))
	h, _ := p.Handler()
	out, err := h.Handle(context.Background(), batchOf("file", "net"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out.Results {
		if r.Status != records.StatusFail {
			t.Errorf("record %d: the guest got through the sandbox: %v %q", i, r.Status, r.Message)
		}
	}
	t.Logf("guest saw: %q, %q", out.Results[0].Message, out.Results[1].Message)
}

func TestStdoutFloodBounded(t *testing.T) {
	logs := &syncBuffer{}
	p := load(t, build(t, misbehave), host.WithMaxOutputBytes(10_000), host.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	h, _ := p.Handler()
	out, err := h.Handle(context.Background(), batchOf("flood"))
	if err != nil || out.Results[0].Status != records.StatusOK {
		t.Fatalf("%v %+v", err, out)
	}
	s := logs.String()
	if n := strings.Count(s, "source=\"guest output\""); n < 9 || n > 11 {
		t.Fatalf("%d guest lines logged, want about 10", n)
	}
	if !strings.Contains(s, "dropped_bytes=10000000") {
		t.Fatalf("drop not reported: %s", s[max(0, len(s)-400):])
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "x.wasm")
	os.WriteFile(notWasm, []byte("not wasm"), 0o644)
	cases := []struct {
		name string
		path func(t *testing.T) string
		opts []host.Option
		is   error
		want string
	}{
		{"missing file", func(*testing.T) string { return filepath.Join(dir, "nope.wasm") }, nil, host.ErrNotFound, "nope.wasm"},
		{"not wasm", func(*testing.T) string { return notWasm }, nil, host.ErrInvalidModule, "x.wasm"},
		{"abi_version 2", func(t *testing.T) string { p, _ := rawbad(t, "abi2"); return p }, nil, host.ErrABIVersion, "abi_version() returned 2"},
		{"imports shardwork_v2", func(t *testing.T) string { p, _ := rawbad(t, "", "importv2"); return p }, nil, host.ErrABIVersion, "built for ABI v2"},
		{"missing export", func(t *testing.T) string { p, _ := rawbad(t, "", "nohandle"); return p }, nil, host.ErrMissingExport, `no exported function "handle"`},
		{"wrong kind", func(t *testing.T) string { return build(t, "plugins/examples/enrich") }, []host.Option{host.WithKinds("aggregator")}, host.ErrWrongKind, "is a handler, not aggregator"},
		{"describe not JSON", func(t *testing.T) string { p, _ := rawbad(t, "badjson"); return p }, nil, nil, "describe returned invalid JSON"},
		{"init fails", func(t *testing.T) string { p, _ := rawbad(t, ""); return p }, []host.Option{host.WithConfig([]byte("mode=initfail"))}, host.ErrInit, `missing field "x"`},
		{"bad config", func(t *testing.T) string { return build(t, "plugins/examples/enrich") }, []host.Option{host.WithConfig([]byte(`{"bogus":1}`))}, host.ErrInit, "bogus"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(t)
			_, err := host.Load(ctx, path, append([]host.Option{host.WithCacheDir(cacheDir)}, c.opts...)...)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error %v, want %v containing %q", err, c.is, c.want)
			}
			t.Log(err)
		})
	}
	if _, err := host.Load(ctx, "x", host.WithPoolSize(0)); !errors.Is(err, host.ErrInvalidOption) || !strings.Contains(err.Error(), "pool size 0") {
		t.Fatalf("bad option: %v", err)
	}
}

func TestInvalidOutputs(t *testing.T) {
	for mode, want := range map[string]string{
		"oob":       "outside the guest's",
		"badoffset": "outside the data area",
	} {
		t.Run(mode, func(t *testing.T) {
			path, opts := rawbad(t, mode)
			p := load(t, path, append(opts, host.WithoutIsolation())...)
			h, _ := p.Handler()
			_, err := h.Handle(context.Background(), batchOf("a"))
			if !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `plugin "rawbad"`) {
				t.Fatalf("error %v, want one containing %q", err, want)
			}
			// With isolation, each record is reported as failed instead.
			p2 := load(t, path, opts...)
			h2, _ := p2.Handler()
			out, err := h2.Handle(context.Background(), batchOf("a", "b"))
			if err != nil || out.Results[0].Status != records.StatusFail || !strings.Contains(out.Results[1].Message, want) {
				t.Fatalf("isolated: %v %+v", err, out.Results)
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	path, opts := rawbad(t, "batcherr")
	p := load(t, path, append(opts, host.WithCircuitBreaker(3, time.Hour))...)
	h, _ := p.Handler()
	ctx := context.Background()
	for i := range 3 {
		out, err := h.Handle(ctx, batchOf("a", "b"))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if out.Results[0].Status != records.StatusFail || !strings.Contains(out.Results[0].Message, "this plugin always fails") {
			t.Fatalf("call %d: %+v", i, out.Results)
		}
	}
	calls := p.Stats().Calls.Load()
	_, err := h.Handle(ctx, batchOf("a"))
	if !errors.Is(err, host.ErrCircuitOpen) || !strings.Contains(err.Error(), `plugin "rawbad"`) || !strings.Contains(err.Error(), "3 consecutive") {
		t.Fatalf("breaker: %v", err)
	}
	if p.Stats().Calls.Load() != calls {
		t.Fatal("an open breaker still called the guest")
	}
}

// TestHostSurvivesAndStaysBounded runs crashing batches on one plugin while
// another plugin keeps serving, and measures the host's heap.
func TestHostSurvivesAndStaysBounded(t *testing.T) {
	bad := load(t, build(t, misbehave), host.WithMemoryLimitPages(512), host.WithPoolSize(2), host.WithCircuitBreaker(1000, time.Hour))
	good := load(t, build(t, "plugins/examples/enrich"))
	bh, _ := bad.Handler()
	gh, _ := good.Handler()
	ctx := context.Background()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			out, err := gh.Handle(ctx, batchOf(`{"level":"error"}`, `{"level":"info"}`))
			if err != nil || len(out.Emit) != 1 {
				errs <- fmt.Errorf("good plugin: %v %+v", err, out)
				return
			}
		}
	}()
	for i := range 10 {
		out, err := bh.Handle(ctx, batchOf("ok", "alloc", "ok", "panic"))
		if err != nil || out.Results[1].Status != records.StatusFail || out.Results[3].Status != records.StatusFail || out.Results[0].Status != records.StatusOK {
			t.Fatalf("round %d: %v %+v", i, err, out.Results)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(base)
	t.Logf("host heap after 10 crashing batches (%d instances discarded): %+d KiB", bad.Stats().Discarded.Load(), grown>>10)
	if grown > 64<<20 {
		t.Fatalf("host heap grew by %d MiB", grown>>20)
	}
}

func TestRecycle(t *testing.T) {
	p := load(t, build(t, "plugins/examples/enrich"), host.WithRecycle(3, 1<<30), host.WithPoolSize(1))
	h, _ := p.Handler()
	for range 7 {
		if _, err := h.Handle(context.Background(), batchOf(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Stats().Recycled.Load(); got != 2 {
		t.Fatalf("recycled %d instances, want 2", got)
	}
	// A memory bound below the guest's footprint recycles after every call.
	p2 := load(t, build(t, "plugins/examples/enrich"), host.WithRecycle(1000, 1<<16), host.WithPoolSize(1))
	h2, _ := p2.Handler()
	for range 3 {
		if _, err := h2.Handle(context.Background(), batchOf(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := p2.Stats().Recycled.Load(); got != 3 {
		t.Fatalf("memory bound recycled %d instances, want 3", got)
	}
}

func TestTrustedMode(t *testing.T) {
	p := load(t, build(t, "plugins/examples/enrich"), host.WithTrusted())
	h, _ := p.Handler()
	out, err := h.Handle(context.Background(), batchOf(`{"level":"warn"}`))
	if err != nil || !p.Trusted() || len(out.Emit) != 1 {
		t.Fatalf("%v %+v", err, out)
	}
}

func TestConcurrentCallsAndClose(t *testing.T) {
	p, err := host.Load(context.Background(), build(t, "plugins/examples/enrich"), host.WithCacheDir(cacheDir), host.WithPoolSize(3))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.Handler()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				out, err := h.Handle(context.Background(), batchOf(fmt.Sprintf(`{"level":"error","g":%d,"i":%d}`, g, i)))
				if err != nil || len(out.Emit) != 1 || !bytes.Contains(out.Emit[0].Data, []byte(fmt.Sprintf(`"g":%d,"i":%d`, g, i))) {
					t.Errorf("g%d i%d: %v %+v", g, i, err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := p.Stats().Instantiated.Load(); n > 3 {
		t.Fatalf("%d instances for a pool of 3", n)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), batchOf(`{}`)); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestMemoryLimit: an allocation bomb stops at the memory limit (the Go
// guest's runtime reports out of memory) instead of taking the host's memory.
func TestMemoryLimit(t *testing.T) {
	p := load(t, build(t, misbehave), host.WithMemoryLimitPages(512), host.WithCallTimeout(time.Minute))
	h, _ := p.Handler()
	out, err := h.Handle(context.Background(), batchOf("alloc"))
	if err != nil || out.Results[0].Status != records.StatusFail || !strings.Contains(out.Results[0].Message, "out of memory") {
		t.Fatalf("%v %+v", err, out.Results)
	}
}

// TestCompileFillsCacheForLoad: after Compile, Load in either mode finds
// the compiled code in the cache directory instead of compiling again.
func TestCompileFillsCacheForLoad(t *testing.T) {
	ctx := context.Background()
	path := build(t, "plugins/examples/enrich")
	dir := t.TempDir()
	if err := host.Compile(ctx, path, dir); err != nil {
		t.Fatal(err)
	}
	countFiles := func() int {
		n := 0
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				n++
			}
			return nil
		})
		return n
	}
	before := countFiles()
	if before < 2 {
		t.Fatalf("Compile cached %d entries, want one per mode", before)
	}
	for _, opts := range [][]host.Option{{host.WithCacheDir(dir)}, {host.WithCacheDir(dir), host.WithTrusted()}} {
		p, err := host.Load(ctx, path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		p.Close(ctx)
	}
	if after := countFiles(); after != before {
		t.Fatalf("Load compiled again: %d cache entries after Compile, %d after Load", before, after)
	}
	if err := host.Compile(ctx, filepath.Join(dir, "missing.wasm"), dir); !errors.Is(err, host.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}
