package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the ABI major version this package implements.
const Version = 1

// ImportModule is the name of the host import module. It carries the major
// version so that a plugin built for another ABI fails at instantiation.
const ImportModule = "shardwork_v1"

// ImportModulePrefix is the prefix shared by every version's import module.
const ImportModulePrefix = "shardwork_v"

// Names of the exports. Every plugin exports the common ones; the per-kind
// ones are required by the kinds the plugin declares in describe.
const (
	ExportMemory     = "memory"
	ExportABIVersion = "abi_version"
	ExportReserve    = "reserve"
	ExportDescribe   = "describe"
	ExportInit       = "init"
	ExportLastError  = "last_error"
	ExportInitialize = "_initialize" // WASI reactor start, called first when present

	ExportSerialize   = "serialize"
	ExportDeserialize = "deserialize"
	ExportAggregate   = "aggregate"
	ExportDeaggregate = "deaggregate"
	ExportSizeAlone   = "size_alone"
	ExportHandle      = "handle"

	// ImportLog is the host function log(level i32, ptr i32, len i32).
	ImportLog = "log"
)

// Kind is a plugin kind, as named in describe.
type Kind string

const (
	KindSerializer Kind = "serializer"
	KindAggregator Kind = "aggregator"
	KindHandler    Kind = "handler"
)

// Exports returns the function exports a plugin of kind k must have, beyond
// the common ones.
func (k Kind) Exports() []string {
	switch k {
	case KindSerializer:
		return []string{ExportSerialize, ExportDeserialize}
	case KindAggregator:
		return []string{ExportAggregate, ExportDeaggregate, ExportSizeAlone}
	case KindHandler:
		return []string{ExportHandle}
	}
	return nil
}

// CommonExports are the function exports every plugin has.
var CommonExports = []string{ExportABIVersion, ExportReserve, ExportDescribe, ExportInit, ExportLastError}

// Op says which entry point a batch is for. Input and output batches of one
// call carry the same Op.
type Op uint16

const (
	OpSerialize   Op = 1
	OpDeserialize Op = 2
	OpAggregate   Op = 3
	OpDeaggregate Op = 4
	OpHandle      Op = 5
)

func (o Op) String() string {
	switch o {
	case OpSerialize:
		return "serialize"
	case OpDeserialize:
		return "deserialize"
	case OpAggregate:
		return "aggregate"
	case OpDeaggregate:
		return "deaggregate"
	case OpHandle:
		return "handle"
	}
	return fmt.Sprintf("op(%d)", uint16(o))
}

// Status is a per-item verdict. The values equal core/records.Status.
type Status uint32

const (
	StatusOK    Status = 0
	StatusRetry Status = 1
	StatusFail  Status = 2
	StatusSkip  Status = 3
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusRetry:
		return "retry"
	case StatusFail:
		return "fail"
	case StatusSkip:
		return "skip"
	}
	return fmt.Sprintf("status(%d)", uint32(s))
}

// FlagAggregated marks a record unpacked from an aggregate (Record.Flags).
const FlagAggregated uint32 = 1

// Layout sizes, in bytes.
const (
	Magic      uint32 = 0x31425753 // "SWB1" in little-endian byte order
	HeaderSize        = 32
	RecordSize        = 64
	ResultSize        = 16
	// MaxBatchSize bounds any encoded batch (offsets are 32-bit).
	MaxBatchSize = 1<<31 - 1
)

// Pack joins a guest pointer and length into the i64 an entry point returns.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack splits an entry point's i64 result into pointer and length.
func Unpack(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }

// Record is one entry of a batch. Which fields are meaningful depends on the
// batch's Op (see ABI.md); unused fields are empty. Byte slices alias the
// buffer a batch was decoded from.
type Record struct {
	Data            []byte
	PartitionKey    []byte
	ExplicitHashKey []byte
	SequenceNumber  []byte
	ShardID         []byte
	SubSequence     int64
	ArrivalNanos    int64 // Unix nanoseconds; 0 when unknown
	// Ref is the number of inputs an aggregate holds (aggregate output) or
	// the index of the input a record came from (deaggregate output).
	Ref   uint32
	Flags uint32
}

// Result is the verdict on one item of the input, by index. Items without a
// Result are OK.
type Result struct {
	Index   uint32
	Status  Status
	Message []byte
}

// Batch is the decoded form of one input or output buffer.
type Batch struct {
	Op       Op
	Deadline int64  // Unix nanoseconds; 0 means none. Inputs only.
	Param    uint32 // aggregate input: the maximum record size
	Records  []Record
	Results  []Result
}

// Reset empties b, keeping its slices' capacity.
func (b *Batch) Reset(op Op) {
	b.Op, b.Deadline, b.Param = op, 0, 0
	b.Records = b.Records[:0]
	b.Results = b.Results[:0]
}

// Size is the encoded size of b in bytes.
func (b *Batch) Size() int {
	n := HeaderSize + RecordSize*len(b.Records) + ResultSize*len(b.Results)
	for i := range b.Records {
		r := &b.Records[i]
		n += len(r.Data) + len(r.PartitionKey) + len(r.ExplicitHashKey) + len(r.SequenceNumber) + len(r.ShardID)
	}
	for i := range b.Results {
		n += len(b.Results[i].Message)
	}
	return n
}

// ErrTooLarge reports a batch whose encoding would exceed MaxBatchSize.
var ErrTooLarge = errors.New("abi: batch too large to encode")

// Append appends the encoding of b to dst.
func (b *Batch) Append(dst []byte) ([]byte, error) {
	size := b.Size()
	if size > MaxBatchSize {
		return dst, ErrTooLarge
	}
	start := len(dst)
	dst = grow(dst, size)
	b.encode(dst[start : start+size])
	return dst, nil
}

// EncodeTo writes the encoding of b into dst, which must be exactly Size()
// bytes long (for example a view of guest memory returned by reserve).
func (b *Batch) EncodeTo(dst []byte) error {
	size := b.Size()
	if size > MaxBatchSize {
		return ErrTooLarge
	}
	if len(dst) != size {
		return fmt.Errorf("abi: encode buffer is %d bytes, batch needs %d", len(dst), size)
	}
	b.encode(dst)
	return nil
}

func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	nd := make([]byte, len(dst)+n, 2*cap(dst)+n)
	copy(nd, dst)
	return nd
}

func (b *Batch) encode(buf []byte) {
	le := binary.LittleEndian
	le.PutUint32(buf[0:], Magic)
	le.PutUint16(buf[4:], Version)
	le.PutUint16(buf[6:], uint16(b.Op))
	le.PutUint32(buf[8:], uint32(len(b.Records)))
	le.PutUint32(buf[12:], uint32(len(b.Results)))
	le.PutUint64(buf[16:], uint64(b.Deadline))
	le.PutUint32(buf[24:], b.Param)
	le.PutUint32(buf[28:], 0)
	off := HeaderSize + RecordSize*len(b.Records) + ResultSize*len(b.Results)
	put := func(at int, v []byte) {
		if len(v) == 0 {
			le.PutUint64(buf[at:], 0)
			return
		}
		le.PutUint32(buf[at:], uint32(off))
		le.PutUint32(buf[at+4:], uint32(len(v)))
		off += copy(buf[off:], v)
	}
	p := HeaderSize
	for i := range b.Records {
		r := &b.Records[i]
		e := buf[p : p+RecordSize]
		put(p+0, r.Data)
		put(p+8, r.PartitionKey)
		put(p+16, r.ExplicitHashKey)
		put(p+24, r.SequenceNumber)
		put(p+32, r.ShardID)
		le.PutUint64(e[40:], uint64(r.SubSequence))
		le.PutUint64(e[48:], uint64(r.ArrivalNanos))
		le.PutUint32(e[56:], r.Ref)
		le.PutUint32(e[60:], r.Flags)
		p += RecordSize
	}
	for i := range b.Results {
		r := &b.Results[i]
		le.PutUint32(buf[p:], r.Index)
		le.PutUint32(buf[p+4:], uint32(r.Status))
		put(p+8, r.Message)
		p += ResultSize
	}
}

// DecodeError describes malformed input to Decode.
type DecodeError struct {
	At  int // byte offset of the offending field
	Msg string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("abi: malformed batch at byte %d: %s", e.At, e.Msg)
}

// Decode parses buf into b, reusing b's slices. Byte fields alias buf. It
// checks the header, that the tables fit, and that every (offset, length)
// lies inside the data area; it never panics on malformed input.
func Decode(buf []byte, b *Batch) error {
	le := binary.LittleEndian
	if len(buf) < HeaderSize {
		return &DecodeError{0, fmt.Sprintf("%d bytes is shorter than the %d-byte header", len(buf), HeaderSize)}
	}
	if m := le.Uint32(buf); m != Magic {
		return &DecodeError{0, fmt.Sprintf("magic %#08x, want %#08x", m, Magic)}
	}
	if v := le.Uint16(buf[4:]); v != Version {
		return &DecodeError{4, fmt.Sprintf("version %d, want %d", v, Version)}
	}
	op := Op(le.Uint16(buf[6:]))
	if op < OpSerialize || op > OpHandle {
		return &DecodeError{6, fmt.Sprintf("unknown op %d", uint16(op))}
	}
	nrec := uint64(le.Uint32(buf[8:]))
	nres := uint64(le.Uint32(buf[12:]))
	dataStart := uint64(HeaderSize) + nrec*RecordSize + nres*ResultSize
	if dataStart > uint64(len(buf)) {
		return &DecodeError{8, fmt.Sprintf("%d records and %d results need %d bytes of tables, buffer has %d", nrec, nres, dataStart, len(buf))}
	}
	if r := le.Uint32(buf[28:]); r != 0 {
		return &DecodeError{28, "reserved header field is not zero"}
	}
	b.Op = op
	b.Deadline = int64(le.Uint64(buf[16:]))
	b.Param = le.Uint32(buf[24:])
	if cap(b.Records) < int(nrec) {
		b.Records = make([]Record, nrec)
	}
	b.Records = b.Records[:nrec]
	p := HeaderSize
	var ok bool
	for i := range b.Records {
		r := &b.Records[i]
		e := buf[p : p+RecordSize : p+RecordSize] // one bounds check for the entry
		if r.Data, ok = field(buf, e[0:8], dataStart); !ok {
			return fieldError(buf, p, dataStart)
		}
		if r.PartitionKey, ok = field(buf, e[8:16], dataStart); !ok {
			return fieldError(buf, p+8, dataStart)
		}
		if r.ExplicitHashKey, ok = field(buf, e[16:24], dataStart); !ok {
			return fieldError(buf, p+16, dataStart)
		}
		if r.SequenceNumber, ok = field(buf, e[24:32], dataStart); !ok {
			return fieldError(buf, p+24, dataStart)
		}
		if r.ShardID, ok = field(buf, e[32:40], dataStart); !ok {
			return fieldError(buf, p+32, dataStart)
		}
		r.SubSequence = int64(le.Uint64(e[40:]))
		r.ArrivalNanos = int64(le.Uint64(e[48:]))
		r.Ref = le.Uint32(e[56:])
		r.Flags = le.Uint32(e[60:])
		p += RecordSize
	}
	if cap(b.Results) < int(nres) {
		b.Results = make([]Result, nres)
	}
	b.Results = b.Results[:nres]
	for i := range b.Results {
		r := &b.Results[i]
		r.Index = le.Uint32(buf[p:])
		r.Status = Status(le.Uint32(buf[p+4:]))
		if r.Status > StatusSkip {
			return &DecodeError{p + 4, fmt.Sprintf("result %d has unknown status %d", i, uint32(r.Status))}
		}
		var ok bool
		if r.Message, ok = field(buf, buf[p+8:p+16], dataStart); !ok {
			return fieldError(buf, p+8, dataStart)
		}
		p += ResultSize
	}
	return nil
}

// field returns the bytes that the offset and length in ent point to, or
// false when they lie outside the data area [dataStart, len(buf)). Small
// enough to inline: decoding costs no call per field.
func field(buf, ent []byte, dataStart uint64) ([]byte, bool) {
	off, n := uint64(binary.LittleEndian.Uint32(ent)), uint64(binary.LittleEndian.Uint32(ent[4:]))
	if n == 0 {
		return nil, true
	}
	if off < dataStart || off+n > uint64(len(buf)) {
		return nil, false
	}
	return buf[off : off+n : off+n], true
}

func fieldError(buf []byte, at int, dataStart uint64) error {
	le := binary.LittleEndian
	off, n := uint64(le.Uint32(buf[at:])), uint64(le.Uint32(buf[at+4:]))
	return &DecodeError{at, fmt.Sprintf("field [%d, %d) is outside the data area [%d, %d)", off, off+n, dataStart, len(buf))}
}
