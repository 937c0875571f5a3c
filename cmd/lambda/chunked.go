package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/shardwork/shardwork/core/records"
)

// pluginPoolSize is the number of instances a loaded plugin keeps (the
// plugins/host default), hence of calls it can run at once.
const pluginPoolSize = 4

// minChunk is the smallest batch part worth a call of its own: below it the
// cost of a call outweighs running on another core.
const minChunk = 1024

// chunkedHandler splits a large batch into contiguous parts and hands them
// to the plugin handler concurrently, at most as many at once as the
// plugin's instance pool and the CPUs allow. The output is as if the whole
// batch had been handled in one call: results in batch order, emitted
// records in the order of their parts. When a part fails, the batch fails
// with the error of the first failed part.
type chunkedHandler struct {
	h     records.Handler
	parts int // upper bound on concurrent calls
}

func newChunkedHandler(h records.Handler) chunkedHandler {
	return chunkedHandler{h: h, parts: min(pluginPoolSize, runtime.GOMAXPROCS(0))}
}

// Handle implements records.Handler.
func (c chunkedHandler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	n := min(c.parts, len(batch)/minChunk)
	if n <= 1 {
		return c.h.Handle(ctx, batch)
	}
	outs := make([]records.HandlerOutput, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	size := (len(batch) + n - 1) / n
	for i := range n {
		lo, hi := i*size, min((i+1)*size, len(batch))
		wg.Go(func() { outs[i], errs[i] = c.h.Handle(ctx, batch[lo:hi:hi]) })
	}
	wg.Wait()
	emitted := 0
	for i := range n {
		if errs[i] != nil {
			return records.HandlerOutput{}, errs[i]
		}
		if want := min((i+1)*size, len(batch)) - i*size; len(outs[i].Results) != want {
			return records.HandlerOutput{}, fmt.Errorf("handler returned %d results for %d records (records %d to %d)", len(outs[i].Results), want, i*size, i*size+want-1)
		}
		emitted += len(outs[i].Emit)
	}
	out := records.HandlerOutput{Results: make([]records.Result, 0, len(batch))}
	if emitted > 0 {
		out.Emit = make([]records.UserRecord, 0, emitted)
	}
	for i := range n {
		out.Results = append(out.Results, outs[i].Results...)
		out.Emit = append(out.Emit, outs[i].Emit...)
	}
	return out, nil
}
