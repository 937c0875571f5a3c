package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardwork/shardwork/plugins/abi"
)

// segment is the decoded output of one successful guest call over the
// inputs [off, off+n) of an operation.
type segment struct {
	off int
	n   int
	out abi.Batch
}

// isolated is an input the guest failed on even alone.
type isolated struct {
	index int
	err   error
}

// callOnce runs one entry point on one instance. The output is copied out of
// guest memory, decoded and checked against the input.
func (p *Plugin) callOnce(ctx context.Context, inst *instance, op abi.Op, in *abi.Batch) (abi.Batch, error) {
	var out abi.Batch
	fn := inst.fns[op]
	if fn == nil {
		return out, &callError{"missing export", fmt.Errorf("no %s export", op)}
	}
	cctx, cancel := p.callCtx(ctx)
	defer cancel()
	if dl, ok := cctx.Deadline(); ok {
		in.Deadline = dl.UnixNano()
	}
	size := in.Size()
	ptr, err := inst.input(cctx, size)
	if err != nil {
		return out, &callError{"reserve failed", err}
	}
	view, _ := inst.mem.Read(ptr, uint32(size)) // bounds checked by input
	if err := in.EncodeTo(view); err != nil {
		return out, &callError{"encode", err}
	}
	inst.calls++
	p.stats.Calls.Add(1)
	res, err := fn.Call(cctx, uint64(size))
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		err = describeTrap(err, cctx)
		if said := inst.out.fatal; said != "" {
			err = fmt.Errorf("%w; guest output: %q", err, said)
		}
		return out, &callError{"trap", err}
	}
	if res[0] == 0 {
		return out, &callError{"batch error", errors.New(inst.lastError(cctx))}
	}
	view, err = inst.read(res[0], op.String())
	if err != nil {
		return out, &callError{"invalid output", err}
	}
	raw := bytes.Clone(view)
	if err := abi.Decode(raw, &out); err != nil {
		return out, &callError{"invalid output", err}
	}
	if err := abi.CheckOutput(in, &out); err != nil {
		return out, &callError{"invalid output", err}
	}
	return out, nil
}

// attempt runs one call on a pooled instance, discarding the instance when
// the call fails.
func (p *Plugin) attempt(ctx context.Context, op abi.Op, recs []abi.Record, param uint32) (abi.Batch, error) {
	inst, err := p.acquire(ctx)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return abi.Batch{}, err
		}
		return abi.Batch{}, &callError{"instantiate", err}
	}
	in := abi.Batch{Op: op, Param: param, Records: recs}
	out, err := p.callOnce(ctx, inst, op, &in)
	p.release(ctx, inst, err != nil)
	if err != nil {
		var ce *callError
		if errors.As(err, &ce) {
			p.stats.Failures.Add(1)
			p.log.Warn("plugin call failed; instance discarded", "op", op.String(), "records", len(recs), "error", err)
		}
	}
	return out, err
}

func isPluginFailure(err error) bool {
	var ce *callError
	return errors.As(err, &ce)
}

// run is the failure policy of every operation: one call; on a plugin
// failure, one retry on another instance; then bisection, which isolates
// the inputs the guest fails on alone while the rest succeed.
func (p *Plugin) run(ctx context.Context, op abi.Op, recs []abi.Record, param uint32) ([]segment, []isolated, error) {
	if err := p.breakerAllow(); err != nil {
		return nil, nil, err
	}
	segs, iso, err := p.runPolicy(ctx, op, recs, param)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
		p.breakerRecord(true, err)
	} else if err == nil {
		// Losing every record of a batch counts as a failed operation.
		if len(recs) > 1 && len(iso) == len(recs) {
			p.breakerRecord(true, iso[0].err)
		} else {
			p.breakerRecord(false, nil)
		}
	}
	if err != nil {
		return nil, nil, &Error{Plugin: p.desc.Name, Op: op.String(), Err: err}
	}
	return segs, iso, nil
}

func (p *Plugin) runPolicy(ctx context.Context, op abi.Op, recs []abi.Record, param uint32) ([]segment, []isolated, error) {
	out, err := p.attempt(ctx, op, recs, param)
	if err == nil {
		return []segment{{0, len(recs), out}}, nil, nil
	}
	if !isPluginFailure(err) || p.cfg.noIsolation {
		return nil, nil, err
	}
	first := err
	out, err = p.attempt(ctx, op, recs, param)
	if err == nil {
		return []segment{{0, len(recs), out}}, nil, nil
	}
	if !isPluginFailure(err) {
		return nil, nil, err
	}
	if len(recs) <= 1 {
		if len(recs) == 0 {
			return nil, nil, err
		}
		return nil, []isolated{{0, err}}, nil
	}
	b := bisector{p: p, ctx: ctx, op: op, param: param}
	mid := len(recs) / 2
	if err := b.run(recs[:mid], 0); err != nil {
		return nil, nil, err
	}
	if err := b.run(recs[mid:], mid); err != nil {
		return nil, nil, err
	}
	p.log.Warn("plugin failed on a batch twice; bisected it", "op", op.String(), "records", len(recs), "isolated", len(b.iso), "first_error", first)
	return b.segs, b.iso, nil
}

type bisector struct {
	p     *Plugin
	ctx   context.Context
	op    abi.Op
	param uint32
	segs  []segment
	iso   []isolated
}

func (b *bisector) run(recs []abi.Record, off int) error {
	out, err := b.p.attempt(b.ctx, b.op, recs, b.param)
	if err == nil {
		b.segs = append(b.segs, segment{off, len(recs), out})
		return nil
	}
	if !isPluginFailure(err) {
		return err
	}
	if len(recs) == 1 {
		b.iso = append(b.iso, isolated{off, err})
		b.p.stats.Isolated.Add(1)
		if len(b.iso) > b.p.cfg.maxIsolated {
			return fmt.Errorf("more than %d records of the batch fail alone, giving up on the batch: %w", b.p.cfg.maxIsolated, err)
		}
		return nil
	}
	mid := len(recs) / 2
	if err := b.run(recs[:mid], off); err != nil {
		return err
	}
	return b.run(recs[mid:], off+mid)
}

// breakerAllow fails fast while the breaker is open; after the cooldown one
// operation is let through (half-open).
func (p *Plugin) breakerAllow() error {
	p.brMu.Lock()
	defer p.brMu.Unlock()
	if p.brFails < p.cfg.breakerFails {
		return nil
	}
	now := p.cfg.now()
	if now.Before(p.brOpenUntil) {
		return &Error{Plugin: p.desc.Name, Op: "call", Err: fmt.Errorf("%w: %d consecutive operations failed, retry after %s; last error: %v",
			ErrCircuitOpen, p.brFails, p.brOpenUntil.Sub(now).Round(time.Millisecond), p.brLast)}
	}
	// Half-open: let this one through; a failure re-opens at once.
	p.brOpenUntil = now.Add(p.cfg.breakerCool)
	return nil
}

func (p *Plugin) breakerRecord(failed bool, err error) {
	p.brMu.Lock()
	defer p.brMu.Unlock()
	if !failed {
		p.brFails = 0
		return
	}
	p.brFails++
	if err != nil {
		p.brLast = err
	}
	if p.brFails >= p.cfg.breakerFails {
		p.brOpenUntil = p.cfg.now().Add(p.cfg.breakerCool)
		p.log.Error("plugin circuit breaker open", "consecutive_failures", p.brFails, "cooldown", p.cfg.breakerCool, "error", p.brLast)
	}
}
