package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/abi"
)

// recPool recycles the input tables of calls: abi.Record holds pointers, so
// a fresh table per batch costs the garbage collector more than the copy.
var recPool = sync.Pool{New: func() any { return new([]abi.Record) }}

func getRecs(n int) *[]abi.Record {
	p := recPool.Get().(*[]abi.Record)
	if cap(*p) < n {
		*p = make([]abi.Record, n)
	}
	*p = (*p)[:n]
	return p
}

func putRecs(p *[]abi.Record) {
	clear(*p) // drop references to the caller's data
	recPool.Put(p)
}

// stringTable turns the byte fields of an output batch into strings with
// one allocation per batch instead of one per field: add every field, then
// take them back in the same order. The strings are copies, so neither the
// guest's layout (fields may overlap) nor a caller writing to an output's
// Data can change them.
type stringTable struct {
	buf []byte
	s   string
	off int
}

func (t *stringTable) add(b []byte) { t.buf = append(t.buf, b...) }

// next returns the next field added, as a string of n bytes.
func (t *stringTable) next(n int) string {
	if t.s == "" && len(t.buf) > 0 {
		t.s = unsafe.String(&t.buf[0], len(t.buf)) // buf is not written again
	}
	s := t.s[t.off : t.off+n]
	t.off += n
	return s
}

// view exposes a string's bytes without copying; the encoder only reads.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (p *Plugin) kind(k abi.Kind) error {
	if !p.desc.Has(k) {
		return &Error{Plugin: p.desc.Name, Op: "adapt", Err: fmt.Errorf("%w: is %s, not %s", ErrWrongKind, kindList(p.desc.Kinds), k)}
	}
	return nil
}

func (p *Plugin) itemErr(msg []byte) error {
	return fmt.Errorf("plugin %q: %s", p.desc.Name, msg)
}

func (p *Plugin) isolatedErr(op abi.Op, err error) error {
	return &Error{Plugin: p.desc.Name, Op: op.String(), Err: fmt.Errorf("the plugin fails on this record alone: %w", err)}
}

func sortItems(ie records.ItemErrors) error {
	if len(ie) == 0 {
		return nil
	}
	slices.SortFunc(ie, func(a, b records.ItemError) int { return a.Index - b.Index })
	return ie
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Serializer adapts a serializer plugin to records.Serializer. Items cross
// the boundary as JSON.
type Serializer struct{ p *Plugin }

// Serializer returns the plugin as a records.Serializer, or ErrWrongKind.
func (p *Plugin) Serializer() (*Serializer, error) {
	if err := p.kind(abi.KindSerializer); err != nil {
		return nil, err
	}
	return &Serializer{p}, nil
}

var _ records.Serializer = (*Serializer)(nil)

// Serialize implements records.Serializer.
func (s *Serializer) Serialize(ctx context.Context, items []any) ([][]byte, error) {
	recs := make([]abi.Record, 0, len(items))
	idx := make([]int, 0, len(items))
	var ie records.ItemErrors
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			ie = append(ie, records.ItemError{Index: i, Err: fmt.Errorf("item is not JSON-encodable for plugin %q: %w", s.p.desc.Name, err)})
			continue
		}
		recs = append(recs, abi.Record{Data: b})
		idx = append(idx, i)
	}
	segs, iso, err := s.p.run(ctx, abi.OpSerialize, recs, 0)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	for _, sg := range segs {
		for j := range sg.out.Records {
			out[idx[sg.off+j]] = sg.out.Records[j].Data
		}
		for _, r := range sg.out.Results {
			i := idx[sg.off+int(r.Index)]
			out[i] = nil
			ie = append(ie, records.ItemError{Index: i, Err: s.p.itemErr(r.Message)})
		}
	}
	for _, x := range iso {
		ie = append(ie, records.ItemError{Index: idx[x.index], Err: s.p.isolatedErr(abi.OpSerialize, x.err)})
	}
	return out, sortItems(ie)
}

// Deserialize implements records.Serializer.
func (s *Serializer) Deserialize(ctx context.Context, data [][]byte) ([]any, error) {
	recs := make([]abi.Record, len(data))
	for i, d := range data {
		recs[i].Data = d
	}
	segs, iso, err := s.p.run(ctx, abi.OpDeserialize, recs, 0)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(data))
	var ie records.ItemErrors
	for _, sg := range segs {
		failed := map[uint32]bool{}
		for _, r := range sg.out.Results {
			failed[r.Index] = true
			ie = append(ie, records.ItemError{Index: sg.off + int(r.Index), Err: s.p.itemErr(r.Message)})
		}
		for j := range sg.out.Records {
			if failed[uint32(j)] {
				continue
			}
			var v any
			if err := json.Unmarshal(sg.out.Records[j].Data, &v); err != nil {
				ie = append(ie, records.ItemError{Index: sg.off + j, Err: fmt.Errorf("plugin %q returned invalid JSON: %w", s.p.desc.Name, err)})
				continue
			}
			out[sg.off+j] = v
		}
	}
	for _, x := range iso {
		ie = append(ie, records.ItemError{Index: x.index, Err: s.p.isolatedErr(abi.OpDeserialize, x.err)})
	}
	return out, sortItems(ie)
}

// Aggregator adapts an aggregator plugin to records.Aggregator.
type Aggregator struct{ p *Plugin }

// Aggregator returns the plugin as a records.Aggregator, or ErrWrongKind.
func (p *Plugin) Aggregator() (*Aggregator, error) {
	if err := p.kind(abi.KindAggregator); err != nil {
		return nil, err
	}
	return &Aggregator{p}, nil
}

var _ records.Aggregator = (*Aggregator)(nil)

// Aggregate implements records.Aggregator.
func (a *Aggregator) Aggregate(ctx context.Context, in []records.UserRecord, maxSize int) ([]records.Aggregated, error) {
	if maxSize <= 0 || maxSize > math.MaxUint32 {
		return nil, fmt.Errorf("plugin %q: aggregate: max size %d out of range", a.p.desc.Name, maxSize)
	}
	rp := getRecs(len(in))
	recs := *rp
	for i := range in {
		recs[i] = abi.Record{Data: in[i].Data, PartitionKey: view(in[i].PartitionKey), ExplicitHashKey: view(in[i].ExplicitHashKey)}
	}
	segs, iso, err := a.p.run(ctx, abi.OpAggregate, recs, uint32(maxSize))
	putRecs(rp)
	if err != nil {
		return nil, err
	}
	var out []records.Aggregated
	var ie records.ItemErrors
	for _, sg := range segs {
		for _, r := range sg.out.Records {
			out = append(out, records.Aggregated{PartitionKey: string(r.PartitionKey), ExplicitHashKey: string(r.ExplicitHashKey), Data: r.Data, Count: int(r.Ref)})
		}
		for _, r := range sg.out.Results {
			ie = append(ie, records.ItemError{Index: sg.off + int(r.Index), Err: a.p.itemErr(r.Message)})
		}
	}
	for _, x := range iso {
		ie = append(ie, records.ItemError{Index: x.index, Err: a.p.isolatedErr(abi.OpAggregate, x.err)})
	}
	return out, sortItems(ie)
}

// Deaggregate implements records.Aggregator.
func (a *Aggregator) Deaggregate(ctx context.Context, in []records.Record) ([]records.Record, error) {
	rp := getRecs(len(in))
	recs := *rp
	for i := range in {
		recs[i] = toABI(&in[i])
	}
	segs, iso, err := a.p.run(ctx, abi.OpDeaggregate, recs, 0)
	putRecs(rp)
	if err != nil {
		return nil, err
	}
	n, size := 0, 0
	for _, sg := range segs {
		n += len(sg.out.Records)
		for _, r := range sg.out.Records {
			size += len(r.PartitionKey) + len(r.ExplicitHashKey)
		}
	}
	strs := stringTable{buf: make([]byte, 0, size)}
	for _, sg := range segs {
		for _, r := range sg.out.Records {
			strs.add(r.PartitionKey)
			strs.add(r.ExplicitHashKey)
		}
	}
	out := make([]records.Record, 0, n)
	var ie records.ItemErrors
	for _, sg := range segs {
		for _, r := range sg.out.Records {
			src := &in[sg.off+int(r.Ref)]
			out = append(out, records.Record{
				Data: r.Data, PartitionKey: strs.next(len(r.PartitionKey)), ExplicitHashKey: strs.next(len(r.ExplicitHashKey)),
				ShardID: src.ShardID, SequenceNumber: src.SequenceNumber, SubSequenceNumber: r.SubSequence,
				Aggregated: r.Flags&abi.FlagAggregated != 0, ArrivalTime: src.ArrivalTime,
			})
		}
		for _, r := range sg.out.Results {
			ie = append(ie, records.ItemError{Index: sg.off + int(r.Index), Err: a.p.itemErr(r.Message)})
		}
	}
	for _, x := range iso {
		ie = append(ie, records.ItemError{Index: x.index, Err: a.p.isolatedErr(abi.OpDeaggregate, x.err)})
	}
	return out, sortItems(ie)
}

// SizeAlone implements records.Aggregator by calling the guest's size_alone.
// If the guest fails it returns math.MaxInt, so the record is rejected as
// too large rather than sent unchecked; the failure is logged.
//
// size_alone is a pure function of the three lengths (ABI.md), so answers
// are remembered: the producer asks once per Put, and a guest call per
// record would cost far more than the lookup.
func (a *Aggregator) SizeAlone(r records.UserRecord) int {
	key, cacheable := sizeKey(r)
	if cacheable {
		if n, ok := a.p.sizes.Load(key); ok {
			return n.(int)
		}
	}
	n, err := a.sizeAlone(r)
	if err != nil {
		a.p.log.Error("size_alone failed", "error", err)
		return math.MaxInt
	}
	if cacheable && a.p.sizesLen.Add(1) <= maxSizeCache {
		a.p.sizes.Store(key, n)
	}
	return n
}

// maxSizeCache bounds the remembered size_alone answers per plugin.
const maxSizeCache = 1 << 16

// sizeKey packs the lengths size_alone depends on; lengths beyond the
// packing (never valid Kinesis records) are not cached.
func sizeKey(r records.UserRecord) (uint64, bool) {
	pk, ehk, data := len(r.PartitionKey), len(r.ExplicitHashKey), len(r.Data)
	if pk >= 1<<16 || ehk >= 1<<8 || data >= 1<<32 {
		return 0, false
	}
	return uint64(pk)<<40 | uint64(ehk)<<32 | uint64(data), true
}

func (a *Aggregator) sizeAlone(r records.UserRecord) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.p.cfg.callTimeout)
	defer cancel()
	inst, err := a.p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	cctx, ccancel := a.p.callCtx(ctx)
	defer ccancel()
	a.p.stats.Calls.Add(1)
	res, err := inst.size.Call(cctx, uint64(len(r.PartitionKey)), uint64(len(r.ExplicitHashKey)), uint64(len(r.Data)))
	a.p.release(ctx, inst, err != nil)
	if err != nil {
		return 0, describeTrap(err, cctx)
	}
	n := int32(res[0])
	if n < 0 {
		return 0, errors.New("size_alone returned a negative size")
	}
	return int(n), nil
}

func toABI(r *records.Record) abi.Record {
	var flags uint32
	if r.Aggregated {
		flags = abi.FlagAggregated
	}
	return abi.Record{
		Data: r.Data, PartitionKey: view(r.PartitionKey), ExplicitHashKey: view(r.ExplicitHashKey),
		SequenceNumber: view(r.SequenceNumber), ShardID: view(r.ShardID),
		SubSequence: r.SubSequenceNumber, ArrivalNanos: nanos(r.ArrivalTime), Flags: flags,
	}
}

// Handler adapts a record-handler plugin to records.Handler.
type Handler struct{ p *Plugin }

// Handler returns the plugin as a records.Handler, or ErrWrongKind.
func (p *Plugin) Handler() (*Handler, error) {
	if err := p.kind(abi.KindHandler); err != nil {
		return nil, err
	}
	return &Handler{p}, nil
}

var _ records.Handler = (*Handler)(nil)

// Handle implements records.Handler. Records the plugin crashes on even
// alone get StatusFail with a message naming the plugin; the others keep the
// plugin's verdicts.
func (h *Handler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	rp := getRecs(len(batch))
	recs := *rp
	for i := range batch {
		recs[i] = toABI(&batch[i])
	}
	segs, iso, err := h.p.run(ctx, abi.OpHandle, recs, 0)
	putRecs(rp)
	if err != nil {
		return records.HandlerOutput{}, err
	}
	out := records.HandlerOutput{Results: make([]records.Result, len(batch))}
	emitted, size := 0, 0
	for _, sg := range segs {
		emitted += len(sg.out.Records)
		for _, r := range sg.out.Results {
			size += len(r.Message)
		}
		for _, r := range sg.out.Records {
			size += len(r.PartitionKey) + len(r.ExplicitHashKey)
		}
	}
	strs := stringTable{buf: make([]byte, 0, size)}
	for _, sg := range segs {
		for _, r := range sg.out.Results {
			strs.add(r.Message)
		}
		for _, r := range sg.out.Records {
			strs.add(r.PartitionKey)
			strs.add(r.ExplicitHashKey)
		}
	}
	if emitted > 0 {
		out.Emit = make([]records.UserRecord, 0, emitted)
	}
	for _, sg := range segs {
		for _, r := range sg.out.Results {
			out.Results[sg.off+int(r.Index)] = records.Result{Status: records.Status(r.Status), Message: strs.next(len(r.Message))}
		}
		for _, r := range sg.out.Records {
			out.Emit = append(out.Emit, records.UserRecord{PartitionKey: strs.next(len(r.PartitionKey)), ExplicitHashKey: strs.next(len(r.ExplicitHashKey)), Data: r.Data})
		}
	}
	for _, x := range iso {
		out.Results[x.index] = records.Result{Status: records.StatusFail, Message: h.p.isolatedErr(abi.OpHandle, x.err).Error()}
	}
	return out, nil
}
