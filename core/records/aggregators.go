package records

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// checkAggregate validates Aggregate's batch-level arguments.
func checkAggregate(ctx context.Context, maxSize int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if maxSize <= 0 {
		return fmt.Errorf("records: aggregate: maxSize must be positive, got %d", maxSize)
	}
	return nil
}

// sub makes the output record for the i-th item unpacked from in.
func sub(in Record, data []byte, i int, aggregated bool) Record {
	return Record{
		Data:              data,
		PartitionKey:      in.PartitionKey,
		ExplicitHashKey:   in.ExplicitHashKey,
		ShardID:           in.ShardID,
		SequenceNumber:    in.SequenceNumber,
		SubSequenceNumber: int64(i),
		Aggregated:        aggregated,
		ArrivalTime:       in.ArrivalTime,
	}
}

// SimpleAggregator puts each user record in a Kinesis record of its own.
type SimpleAggregator struct{}

// SizeAlone implements Aggregator.
func (SimpleAggregator) SizeAlone(r UserRecord) int { return len(r.Data) + len(r.PartitionKey) }

// Aggregate implements Aggregator.
func (a SimpleAggregator) Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	if err := checkAggregate(ctx, maxSize); err != nil {
		return nil, err
	}
	out := make([]Aggregated, 0, len(in))
	var errs itemErrs
	for i, r := range in {
		if n := a.SizeAlone(r); n > maxSize {
			errs.add(i, tooLarge(n, maxSize))
			continue
		}
		out = append(out, Aggregated{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data, Count: 1})
	}
	return out, errs.err()
}

// Deaggregate implements Aggregator: each record passes through unchanged.
func (SimpleAggregator) Deaggregate(ctx context.Context, in []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, len(in))
	for i, r := range in {
		out[i] = sub(r, r.Data, 0, false)
	}
	return out, nil
}

// framer describes a concatenating format: a prefix and suffix per output,
// a per-item frame and separator.
type framer struct {
	open, close, sep []byte
	frameSize        func(data []byte) int
	appendFrame      func(dst, data []byte) []byte
	check            func(data []byte) error
}

func (f *framer) sizeAlone(r UserRecord) int {
	return len(f.open) + f.frameSize(r.Data) + len(f.close) + len(r.PartitionKey)
}

// aggregate packs in greedily, in order, never exceeding maxSize for data
// plus the output's partition key (its first record's).
func (f *framer) aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	if err := checkAggregate(ctx, maxSize); err != nil {
		return nil, err
	}
	// First pass: decide which records go together and how large each
	// output is, so that the second pass allocates each output once.
	var errs itemErrs
	type group struct{ first, last, count, size int }
	var groups []group
	skip := make([]bool, len(in))
	for i, r := range in {
		if f.check != nil {
			if err := f.check(r.Data); err != nil {
				errs.add(i, err)
				skip[i] = true
				continue
			}
		}
		if n := f.sizeAlone(r); n > maxSize {
			errs.add(i, tooLarge(n, maxSize))
			skip[i] = true
			continue
		}
		if len(groups) > 0 {
			g := &groups[len(groups)-1]
			if g.size+len(f.sep)+f.frameSize(r.Data)+len(f.close)+len(in[g.first].PartitionKey) <= maxSize {
				g.size += len(f.sep) + f.frameSize(r.Data)
				g.last = i
				g.count++
				continue
			}
		}
		groups = append(groups, group{first: i, last: i, count: 1, size: len(f.open) + f.frameSize(r.Data)})
	}
	out := make([]Aggregated, len(groups))
	for k, g := range groups {
		buf := make([]byte, 0, g.size+len(f.close))
		buf = append(buf, f.open...)
		for i := g.first; i <= g.last; i++ {
			if skip[i] {
				continue
			}
			if i != g.first {
				buf = append(buf, f.sep...)
			}
			buf = f.appendFrame(buf, in[i].Data)
		}
		buf = append(buf, f.close...)
		r := in[g.first]
		out[k] = Aggregated{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: buf, Count: g.count}
	}
	return out, errs.err()
}

// NewlineAggregator writes each user record followed by '\n' (JSON lines).
// Reading splits on '\n' and ignores empty rows; a last row without its
// newline is accepted. A user record containing '\n' cannot be framed and
// is rejected with ErrUnsupported, as is an empty one (it would be read
// back as nothing).
type NewlineAggregator struct{}

var newlineFramer = &framer{
	frameSize:   func(d []byte) int { return len(d) + 1 },
	appendFrame: func(dst, d []byte) []byte { return append(append(dst, d...), '\n') },
	check: func(d []byte) error {
		if len(d) == 0 {
			return unsupported("newline aggregator: an empty record would be read back as nothing")
		}
		if i := bytes.IndexByte(d, '\n'); i >= 0 {
			return unsupported("newline aggregator: record contains a newline at byte %d", i)
		}
		return nil
	},
}

// SizeAlone implements Aggregator.
func (NewlineAggregator) SizeAlone(r UserRecord) int { return newlineFramer.sizeAlone(r) }

// Aggregate implements Aggregator.
func (NewlineAggregator) Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	return newlineFramer.aggregate(ctx, in, maxSize)
}

// Deaggregate implements Aggregator.
func (NewlineAggregator) Deaggregate(ctx context.Context, in []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(in))
	for _, r := range in {
		d := r.Data
		n := 0
		for len(d) > 0 {
			row := d
			if j := bytes.IndexByte(d, '\n'); j >= 0 {
				row, d = d[:j], d[j+1:]
			} else {
				d = nil
			}
			if len(row) == 0 {
				continue
			}
			out = append(out, sub(r, row, n, true))
			n++
		}
	}
	return out, nil
}

// NetstringAggregator frames each user record as
// `<decimal byte length>:<bytes>,` (the seed's msgpack framing).
type NetstringAggregator struct{}

var netstringFramer = &framer{
	frameSize: func(d []byte) int { return decimalLen(len(d)) + 2 + len(d) },
	appendFrame: func(dst, d []byte) []byte {
		dst = strconv.AppendInt(dst, int64(len(d)), 10)
		dst = append(dst, ':')
		return append(append(dst, d...), ',')
	},
}

func decimalLen(n int) int {
	l := 1
	for n >= 10 {
		n /= 10
		l++
	}
	return l
}

// SizeAlone implements Aggregator.
func (NetstringAggregator) SizeAlone(r UserRecord) int { return netstringFramer.sizeAlone(r) }

// Aggregate implements Aggregator.
func (NetstringAggregator) Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	return netstringFramer.aggregate(ctx, in, maxSize)
}

// Deaggregate implements Aggregator. The length must be decimal digits
// (at most 10) followed by ':', the data must be complete and followed by
// ','.
func (NetstringAggregator) Deaggregate(ctx context.Context, in []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(in))
	var errs itemErrs
	for i, r := range in {
		start := len(out)
		if err := splitNetstrings(r.Data, func(n int, d []byte) { out = append(out, sub(r, d, n, true)) }); err != nil {
			out = out[:start]
			errs.add(i, err)
		}
	}
	return out, errs.err()
}

func splitNetstrings(d []byte, emit func(n int, data []byte)) error {
	pos, n := 0, 0
	for pos < len(d) {
		j := pos
		length := 0
		for j < len(d) && d[j] >= '0' && d[j] <= '9' {
			if j-pos == 10 {
				return malformed("netstring %d at byte %d: length has more than 10 digits", n, pos)
			}
			length = length*10 + int(d[j]-'0')
			j++
		}
		if j == pos {
			return malformed("netstring %d at byte %d: expected a decimal length, found %q", n, pos, d[j])
		}
		if j == len(d) {
			return malformed("netstring %d at byte %d: truncated after the length", n, pos)
		}
		if d[j] != ':' {
			return malformed("netstring %d at byte %d: expected ':' after the length, found %q", n, pos, d[j])
		}
		j++
		if length > len(d)-j {
			return malformed("netstring %d at byte %d: length %d exceeds the %d bytes left (truncated data or wrong length)", n, pos, length, len(d)-j)
		}
		end := j + length
		if end == len(d) {
			return malformed("netstring %d at byte %d: missing ',' after %d bytes of data (truncated data or wrong length)", n, pos, length)
		}
		if d[end] != ',' {
			return malformed("netstring %d at byte %d: expected ',' after %d bytes of data, found %q (wrong length?)", n, pos, length, d[end])
		}
		emit(n, d[j:end])
		n++
		pos = end + 1
	}
	return nil
}

// ListAggregator writes the user records, which must be JSON values, as one
// JSON array `[a, b]` (Python's separators, as the seed). Reading yields the
// array's elements as separate records.
type ListAggregator struct{}

var listFramer = &framer{
	open: []byte{'['}, close: []byte{']'}, sep: []byte{',', ' '},
	frameSize:   func(d []byte) int { return len(d) },
	appendFrame: func(dst, d []byte) []byte { return append(dst, d...) },
	check: func(d []byte) error {
		if !json.Valid(d) {
			return unsupported("list aggregator: record is not a JSON value")
		}
		return nil
	},
}

// SizeAlone implements Aggregator.
func (ListAggregator) SizeAlone(r UserRecord) int { return listFramer.sizeAlone(r) }

// Aggregate implements Aggregator.
func (ListAggregator) Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	return listFramer.aggregate(ctx, in, maxSize)
}

// Deaggregate implements Aggregator.
func (ListAggregator) Deaggregate(ctx context.Context, in []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(in))
	var errs itemErrs
	for i, r := range in {
		var elems []json.RawMessage
		if t := bytes.TrimLeft(r.Data, " \t\r\n"); len(t) > 0 && t[0] != '[' && json.Valid(r.Data) {
			errs.add(i, malformed("JSON list: the data is JSON but not an array"))
			continue
		}
		if err := json.Unmarshal(r.Data, &elems); err != nil {
			if json.Valid(r.Data) {
				errs.add(i, malformed("JSON list: the data is JSON but not an array"))
			} else {
				errs.add(i, malformed("invalid JSON list: %v", err))
			}
			continue
		}
		for n, e := range elems {
			out = append(out, sub(r, []byte(e), n, true))
		}
	}
	return out, errs.err()
}
