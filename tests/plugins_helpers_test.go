package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/tests/harness"
)

// pluginCacheDir is wazero's on-disk compilation cache, shared with the
// host's own tests: entries are keyed by module hash and wazero version, so
// a re-run skips compiling unchanged plugins.
var pluginCacheDir = filepath.Join(os.TempDir(), "shardwork-wazero-test-cache")

// buildPlugins builds the Go example plugins plugins/examples/<name> with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared into dir, concurrently, and
// returns the .wasm path of each name.
func buildPlugins(t testing.TB, dir string, names ...string) map[string]string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	paths := make(map[string]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out := filepath.Join(dir, name+".wasm")
		paths[name] = out
		wg.Go(func() {
			args := []string{"build", "-buildmode=c-shared", "-trimpath", "-o", out, "./plugins/examples/" + name}
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("GOOS=wasip1 GOARCH=wasm go %v: %v\n%s", args, err, stderr.String())
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// loadPlugin loads a plugin (sandboxed, the default) and closes it when
// the test ends.
func loadPlugin(t testing.TB, path string, opts ...host.Option) *host.Plugin {
	t.Helper()
	p, err := host.Load(context.Background(), path, append([]host.Option{host.WithCacheDir(pluginCacheDir)}, opts...)...)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("close plugin %s: %v", p.Name(), err)
		}
	})
	return p
}

// pipelineVerdict is one record as the record handler saw it and the
// handler's verdict on it.
type pipelineVerdict struct {
	rec records.Record
	res records.Result
}

// pipelineTally records every verdict of a consumer's handler, by item id,
// and closes done once want records got a final verdict (anything but
// RETRY).
type pipelineTally struct {
	mu    sync.Mutex
	byID  map[int][]pipelineVerdict
	other []pipelineVerdict // records that held no item with an id
	final int
	want  int
	done  chan struct{}
}

func newPipelineTally(want int) *pipelineTally {
	return &pipelineTally{byID: map[int][]pipelineVerdict{}, want: want, done: make(chan struct{})}
}

func (t *pipelineTally) add(recs []records.Record, ids []int, res []records.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	before := t.final
	for i, r := range res {
		v := pipelineVerdict{rec: recs[i], res: r}
		if ids[i] < 0 {
			t.other = append(t.other, v)
		} else {
			t.byID[ids[i]] = append(t.byID[ids[i]], v)
		}
		if r.Status != records.StatusRetry {
			t.final++
		}
	}
	if before < t.want && t.final >= t.want {
		close(t.done)
	}
}

func (t *pipelineTally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.final
}

// jsonItemHandler runs a handler that works on JSON items (the WASM enrich
// plugin) over a stream whose records hold items in another encoding: it
// decodes each record's data with ser (the WASM msgpack plugin) and hands
// next the item as JSON (json.Marshal of the decoded value), with the
// record's metadata unchanged. So handlers see items as JSON, whatever the
// wire encoding. Data that does not decode goes to next unchanged, and next
// decides what to do with it (enrich fails it as invalid JSON). Every
// verdict is recorded in tally.
type jsonItemHandler struct {
	ser   records.Serializer
	next  records.Handler
	tally *pipelineTally
}

func (h *jsonItemHandler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	data := make([][]byte, len(batch))
	for i := range batch {
		data[i] = batch[i].Data
	}
	items, err := h.ser.Deserialize(ctx, data)
	undecoded, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		return records.HandlerOutput{}, fmt.Errorf("deserialize %d records: %w", len(batch), batchErr)
	}
	skip := make(map[int]bool, len(undecoded))
	for _, e := range undecoded {
		skip[e.Index] = true
	}
	in := make([]records.Record, len(batch))
	ids := make([]int, len(batch))
	for i, r := range batch {
		in[i], ids[i] = r, -1
		if skip[i] {
			continue
		}
		b, err := json.Marshal(items[i])
		if err != nil {
			return records.HandlerOutput{}, fmt.Errorf("record %s/%d: item as JSON: %w", r.SequenceNumber, r.SubSequenceNumber, err)
		}
		in[i].Data = b
		if m, ok := items[i].(map[string]any); ok {
			if id, ok := m["id"].(float64); ok {
				ids[i] = int(id)
			}
		}
	}
	out, err := h.next.Handle(ctx, in)
	if err != nil {
		return out, err
	}
	if len(out.Results) == len(in) {
		h.tally.add(in, ids, out.Results)
	}
	return out, nil
}

// pluginOutput writes the records handlers emit to an output stream with a
// batch producer and flushes before the batch is acknowledged, so a
// checkpoint never passes a record whose emitted records are not in the
// output stream yet.
type pluginOutput struct {
	p      *batch.Producer
	failed atomic.Int64
}

func openPluginOutput(t testing.TB, ctx context.Context, env *harness.Env, stream string) *pluginOutput {
	t.Helper()
	o := &pluginOutput{}
	p, err := batch.Open(ctx, env.Client, stream, append(unlimited,
		batch.ErrorCallback(func(batch.FailedRecord) { o.failed.Add(1) }))...)
	if err != nil {
		t.Fatalf("open output producer: %v", err)
	}
	o.p = p
	return o
}

func (o *pluginOutput) emit(ctx context.Context, recs []records.UserRecord) error {
	for _, r := range recs {
		if err := o.p.PutRecord(ctx, r); err != nil {
			return fmt.Errorf("put emitted record: %w", err)
		}
	}
	if err := o.p.Flush(ctx); err != nil {
		return fmt.Errorf("flush emitted records: %w", err)
	}
	if n := o.failed.Load(); n > 0 {
		return fmt.Errorf("%d emitted records were given up", n)
	}
	return nil
}
