package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"
	"unsafe"

	"github.com/shardwork/shardwork/plugins/abi"
)

// Info describes the plugin; describe returns it with the kinds registered.
type Info struct {
	Name    string
	Version string
	Summary string
	// ConfigSchema is an optional JSON Schema of the init config.
	ConfigSchema string
	// Init, when set, receives the config JSON given to init (may be empty).
	Init func(config []byte) error
}

// Record is one consumed record as a handler or deaggregator sees it. Its
// bytes and strings alias the call's input buffer: they are valid only
// during the call (copy them, e.g. with strings.Clone, to keep them longer).
type Record struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
	SequenceNumber  string
	ShardID         string
	SubSequence     int64
	ArrivalNanos    int64
	Aggregated      bool
}

// UserRecord is a record to aggregate, to emit or unpacked from an aggregate.
// Inputs given to Aggregate alias the call's input buffer like Record.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
}

// Aggregated is one Kinesis record made by Aggregate, holding Count inputs.
type Aggregated struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
	Count           int
}

// ItemError reports one input item that failed.
type ItemError struct {
	Index int
	Err   error
}

// Status is a handler's verdict on a record.
type Status = abi.Status

const (
	OK    = abi.StatusOK
	Retry = abi.StatusRetry
	Fail  = abi.StatusFail
	Skip  = abi.StatusSkip
)

// Result is a handler's verdict with an optional message.
type Result struct {
	Status  Status
	Message string
}

// Aggregator is what an aggregator plugin implements.
type Aggregator interface {
	// Aggregate packs in, in order, into records of at most maxSize bytes
	// (data plus partition key). Inputs that cannot fit are reported in
	// failed and left out of the outputs' counts.
	Aggregate(in []UserRecord, maxSize int) (out []Aggregated, failed []ItemError)
	// Deaggregate unpacks one Kinesis record. aggregated is false when r
	// was not an aggregate and passes through as the single output.
	Deaggregate(r *Record) (out []UserRecord, aggregated bool, err error)
	// SizeAlone is the size of an aggregate holding one record with these
	// byte lengths (data plus partition key).
	SizeAlone(pkLen, ehkLen, dataLen int) int
}

// Emitter collects records a handler emits to the output stream.
type Emitter interface {
	Emit(r UserRecord)
}

// HandlerFunc handles one record; it may emit records.
type HandlerFunc func(r *Record, emit Emitter) Result

var (
	info        Info
	serialize   func(dst, item []byte) ([]byte, error)
	deserialize func(dst, data []byte) ([]byte, error)
	aggregator  Aggregator
	handler     HandlerFunc
)

// Describe sets the plugin's name, version, summary, config schema and init
// hook. Call it from an init function.
func Describe(i Info) { info = i }

// RegisterSerializer makes the plugin a serializer. ser gets each item as
// JSON and appends its serialized form to dst; de appends the item as JSON.
// Both return the extended dst. Appending to one buffer per call spares the
// guest an allocation per item, which is what costs most in a Go guest.
func RegisterSerializer(ser func(dst, item []byte) ([]byte, error), de func(dst, data []byte) ([]byte, error)) {
	serialize, deserialize = ser, de
}

// RegisterAggregator makes the plugin an aggregator.
func RegisterAggregator(a Aggregator) { aggregator = a }

// RegisterHandler makes the plugin a record handler.
func RegisterHandler(h HandlerFunc) { handler = h }

func describeJSON() []byte {
	d := abi.Description{
		Name: info.Name, Version: info.Version, ABI: abi.Version, Summary: info.Summary,
		ItemEncoding: "json",
	}
	if info.ConfigSchema != "" {
		d.ConfigSchema = json.RawMessage(info.ConfigSchema)
	}
	if d.Name == "" {
		d.Name = "unnamed"
	}
	if serialize != nil {
		d.Kinds = append(d.Kinds, abi.KindSerializer)
	}
	if aggregator != nil {
		d.Kinds = append(d.Kinds, abi.KindAggregator)
	}
	if handler != nil {
		d.Kinds = append(d.Kinds, abi.KindHandler)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return []byte(`{"name":"invalid config schema","abi":1,"kinds":[]}`)
	}
	return b
}

// state is the per-instance buffers; an instance runs one call at a time.
type state struct {
	in, out []byte
	arena   []byte // serializer outputs of the current call
	lastErr []byte
	inB     abi.Batch
	outB    abi.Batch
	recs    []Record
	urecs   []UserRecord
	em      emitter
	scratch arena
}

// arena hands out byte slices that live until the current call returns;
// its chunks are reused by later calls, so a plugin that builds its
// outputs in Scratch memory allocates nothing per record once warm.
type arena struct {
	chunks [][]byte
	cur    int // index of the chunk being filled
	off    int // bytes used in chunks[cur]
}

const arenaChunk = 64 << 10

func (a *arena) reset() { a.cur, a.off = 0, 0 }

func (a *arena) alloc(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, 0, n) // large: its own allocation, not kept
	}
	for a.cur < len(a.chunks) {
		if c := a.chunks[a.cur]; len(c)-a.off >= n {
			b := c[a.off : a.off : a.off+n]
			a.off += n
			return b
		}
		a.cur++
		a.off = 0
	}
	a.chunks = append(a.chunks, make([]byte, arenaChunk))
	a.off = n
	return a.chunks[a.cur][0:0:n]
}

// Scratch returns an empty slice with capacity n from memory that stays
// valid until the current call (handle, serialize, ...) returns, and is
// reused afterwards. A handler can build the records it emits in it instead
// of allocating each one: append at most n bytes (appending more moves the
// slice to an ordinary allocation, which is still correct). Outside a call
// the memory is valid until the next call starts.
func Scratch(n int) []byte {
	if n < 0 {
		n = 0
	}
	return st.scratch.alloc(n)
}

var st state

func (s *state) reserve(n int) []byte {
	if cap(s.in) < n {
		s.in = make([]byte, n, n+n/4)
	}
	s.in = s.in[:n]
	return s.in
}

func (s *state) fail(err error) {
	s.lastErr = append(s.lastErr[:0], err.Error()...)
}

// call runs one entry point over the input in s.in[:n], recovering panics
// into batch errors, and returns the encoded output (nil = batch error).
func (s *state) call(op abi.Op, n int, param uint32) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(fmt.Errorf("panic in %s: %v%s", op, p, panicSite()))
			out = nil
		}
	}()
	if n < 0 || n > len(s.in) {
		s.fail(fmt.Errorf("%s: input length %d is outside the reserved %d bytes", op, n, len(s.in)))
		return nil
	}
	s.scratch.reset()
	if err := abi.Decode(s.in[:n], &s.inB); err != nil {
		s.fail(err)
		return nil
	}
	if s.inB.Op != op {
		s.fail(fmt.Errorf("%s called with a %s batch", op, s.inB.Op))
		return nil
	}
	s.outB.Reset(op)
	var err error
	switch op {
	case abi.OpSerialize, abi.OpDeserialize:
		err = s.serde(op)
	case abi.OpAggregate:
		err = s.aggregate()
	case abi.OpDeaggregate:
		err = s.deaggregate()
	case abi.OpHandle:
		err = s.handle()
	}
	if err != nil {
		s.fail(err)
		return nil
	}
	s.out, err = s.outB.Append(s.out[:0])
	if err != nil {
		s.fail(err)
		return nil
	}
	return s.out
}

var errNotKind = errors.New("plugin does not implement this kind")

func (s *state) failItem(i int, err error) {
	s.outB.Results = append(s.outB.Results, abi.Result{Index: uint32(i), Status: abi.StatusFail, Message: []byte(err.Error())})
}

func (s *state) serde(op abi.Op) error {
	f := serialize
	if op == abi.OpDeserialize {
		f = deserialize
	}
	if f == nil {
		return fmt.Errorf("%s: %w", op, errNotKind)
	}
	arena := s.arena[:0]
	for i := range s.inB.Records {
		start := len(arena)
		next, err := f(arena, s.inB.Records[i].Data)
		if err != nil {
			s.failItem(i, err)
			s.outB.Records = append(s.outB.Records, abi.Record{})
			continue
		}
		// Earlier items keep pointing at the old array if next grew.
		arena = next
		s.outB.Records = append(s.outB.Records, abi.Record{Data: arena[start:len(arena):len(arena)]})
	}
	s.arena = arena
	return nil
}

// str views b as a string without copying. The strings of a Record alias
// the call's input buffer, which stays unchanged until the call returns.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func toRecord(r *abi.Record, dst *Record) {
	*dst = Record{
		Data: r.Data, PartitionKey: str(r.PartitionKey), ExplicitHashKey: str(r.ExplicitHashKey),
		SequenceNumber: str(r.SequenceNumber), ShardID: str(r.ShardID),
		SubSequence: r.SubSequence, ArrivalNanos: r.ArrivalNanos, Aggregated: r.Flags&abi.FlagAggregated != 0,
	}
}

func (s *state) records() []Record {
	s.recs = s.recs[:0]
	for i := range s.inB.Records {
		s.recs = append(s.recs, Record{})
		toRecord(&s.inB.Records[i], &s.recs[i])
	}
	return s.recs
}

func (s *state) aggregate() error {
	if aggregator == nil {
		return fmt.Errorf("aggregate: %w", errNotKind)
	}
	s.urecs = s.urecs[:0]
	for i := range s.inB.Records {
		r := &s.inB.Records[i]
		s.urecs = append(s.urecs, UserRecord{PartitionKey: str(r.PartitionKey), ExplicitHashKey: str(r.ExplicitHashKey), Data: r.Data})
	}
	out, failed := aggregator.Aggregate(s.urecs, int(s.inB.Param))
	for _, a := range out {
		s.outB.Records = append(s.outB.Records, abi.Record{
			Data: a.Data, PartitionKey: bytesOf(a.PartitionKey), ExplicitHashKey: bytesOf(a.ExplicitHashKey), Ref: uint32(a.Count),
		})
	}
	for _, f := range failed {
		s.failItem(f.Index, f.Err)
	}
	return nil
}

func (s *state) deaggregate() error {
	if aggregator == nil {
		return fmt.Errorf("deaggregate: %w", errNotKind)
	}
	for i, r := range s.records() {
		out, agg, err := aggregator.Deaggregate(&r)
		if err != nil {
			s.failItem(i, err)
			continue
		}
		var flags uint32
		if agg {
			flags = abi.FlagAggregated
		}
		for j, u := range out {
			sub := int64(0)
			if agg {
				sub = int64(j)
			}
			s.outB.Records = append(s.outB.Records, abi.Record{
				Data: u.Data, PartitionKey: bytesOf(u.PartitionKey), ExplicitHashKey: bytesOf(u.ExplicitHashKey),
				SubSequence: sub, Ref: uint32(i), Flags: flags,
			})
		}
	}
	return nil
}

type emitter struct{ b *abi.Batch }

// Emit keeps r until the call's output is encoded; its strings are viewed
// as bytes without copying (the encoder only reads them).
func (e emitter) Emit(r UserRecord) {
	e.b.Records = append(e.b.Records, abi.Record{Data: r.Data, PartitionKey: bytesOf(r.PartitionKey), ExplicitHashKey: bytesOf(r.ExplicitHashKey)})
}

// bytesOf views s as bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (s *state) handle() error {
	if handler == nil {
		return fmt.Errorf("handle: %w", errNotKind)
	}
	em := emitter{&s.outB}
	for i := range s.records() {
		res := handler(&s.recs[i], em)
		if res.Status != OK || res.Message != "" {
			if res.Status > Skip {
				return fmt.Errorf("handler returned unknown status %d for record %d", res.Status, i)
			}
			s.outB.Results = append(s.outB.Results, abi.Result{Index: uint32(i), Status: res.Status, Message: bytesOf(res.Message)})
		}
	}
	return nil
}

func (s *state) init(n int) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(fmt.Errorf("panic in init: %v", p))
			ok = false
		}
	}()
	if n < 0 || n > len(s.in) {
		s.fail(fmt.Errorf("init: config length %d is outside the reserved %d bytes", n, len(s.in)))
		return false
	}
	if info.Init == nil {
		return true
	}
	if err := info.Init(s.in[:n]); err != nil {
		s.fail(fmt.Errorf("init: %w", err))
		return false
	}
	return true
}

// panicSite names the function that panicked, called from a deferred
// recover.
func panicSite() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	seenPanic := false
	for {
		f, more := frames.Next()
		if seenPanic && !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf(" (at %s, %s:%d)", f.Function, path.Base(f.File), f.Line)
		}
		if f.Function == "runtime.gopanic" {
			seenPanic = true
		}
		if !more {
			return ""
		}
	}
}
