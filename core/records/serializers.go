package records

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// StringSerializer serializes string and []byte items as their UTF-8 bytes
// and deserializes record data as strings. Data that is not valid UTF-8 is
// malformed (the seed decodes it with Python's strict UTF-8 codec).
type StringSerializer struct{}

// Serialize implements Serializer.
func (StringSerializer) Serialize(ctx context.Context, items []any) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	var errs itemErrs
	for i, it := range items {
		var b []byte
		switch v := it.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		default:
			errs.add(i, unsupported("string serializer takes string or []byte, not %T", it))
			continue
		}
		if !utf8.Valid(b) {
			errs.add(i, unsupported("string item is not valid UTF-8"))
			continue
		}
		out[i] = b
	}
	return out, errs.err()
}

// Deserialize implements Serializer; items are strings.
func (StringSerializer) Deserialize(ctx context.Context, data [][]byte) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]any, len(data))
	var errs itemErrs
	for i, d := range data {
		if !utf8.Valid(d) {
			errs.add(i, malformed("string: invalid UTF-8 at byte %d", invalidUTF8At(d)))
			continue
		}
		out[i] = string(d)
	}
	return out, errs.err()
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// JSONSerializer serializes items with encoding/json and formats the output
// as Python's json.dumps does by default (the seed's encoder): ", " and ": "
// separators and non-ASCII characters escaped as \uXXXX. Map keys are sorted
// (Go maps have no order); struct fields keep their declared order.
// Deserialize accepts any JSON and gives what encoding/json gives for an
// `any` (map[string]any, []any, float64, string, bool, nil).
//
// Python's float formatting is not reproduced: a float64 is written as
// encoding/json writes it (1 rather than 1.0, 0.00001 rather than 1e-05);
// both decode to the same value.
type JSONSerializer struct {
	// UseNumber makes Deserialize give numbers as json.Number, which keeps
	// integers beyond 2^53 exact and re-serializes them unchanged.
	UseNumber bool
}

// Serialize implements Serializer.
func (JSONSerializer) Serialize(ctx context.Context, items []any) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	var errs itemErrs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var arena []byte
	for i, it := range items {
		// Common types are written directly into a shared arena; anything
		// else goes through encoding/json.
		start := len(arena)
		if b, ok := appendPyJSON(arena, it, 0); ok {
			if cap(b) != cap(arena) && start > 0 {
				// The arena moved: start the next one with this item.
				b = append(make([]byte, 0, max(4096, 2*(len(b)-start))), b[start:]...)
				start = 0
			}
			arena = b
			out[i] = arena[start:len(arena):len(arena)]
			continue
		}
		arena = arena[:start]
		buf.Reset()
		if err := enc.Encode(it); err != nil {
			errs.add(i, unsupported("json: %v", err))
			continue
		}
		out[i] = pythonJSON(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
	}
	return out, errs.err()
}

// Deserialize implements Serializer.
func (s JSONSerializer) Deserialize(ctx context.Context, data [][]byte) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]any, len(data))
	var errs itemErrs
	for i, d := range data {
		var v any
		if err := s.unmarshal(d, &v); err != nil {
			errs.add(i, malformed("invalid JSON: %v", err))
			continue
		}
		out[i] = v
	}
	return out, errs.err()
}

func (s JSONSerializer) unmarshal(d []byte, v *any) error {
	if !s.UseNumber {
		return json.Unmarshal(d, v)
	}
	if !json.Valid(d) {
		return json.Unmarshal(d, v) // reports what is wrong
	}
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	return dec.Decode(v)
}

const hexDigits = "0123456789abcdef"

// pythonJSON rewrites compact JSON from encoding/json into Python's default
// json.dumps form: a space after each ',' and ':' outside strings and every
// non-ASCII character escaped as \uXXXX (UTF-16 surrogate pairs above
// U+FFFF).
func pythonJSON(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(in)/8+8)
	inStr := false
	for i := 0; i < len(in); {
		c := in[i]
		if inStr {
			switch {
			case c == '\\':
				out = append(out, c, in[i+1])
				i += 2
				continue
			case c == '"':
				inStr = false
			case c >= utf8.RuneSelf:
				r, n := utf8.DecodeRune(in[i:])
				if r >= 0x10000 {
					r -= 0x10000
					out = appendU(out, 0xD800+(r>>10))
					out = appendU(out, 0xDC00+(r&0x3FF))
				} else {
					out = appendU(out, r)
				}
				i += n
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		out = append(out, c)
		switch c {
		case '"':
			inStr = true
		case ',', ':':
			out = append(out, ' ')
		}
		i++
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// MsgpackSerializer serializes items as MessagePack the way the seed does
// (Python msgpack with use_bin_type=True): the smallest integer encodings,
// str8 for short strings, bin for []byte, float64 for floats. Map keys are
// sorted. Deserialize gives map[string]any, []any, int64, uint64, float64,
// string, []byte, bool and nil.
type MsgpackSerializer struct{}

// Serialize implements Serializer.
func (MsgpackSerializer) Serialize(ctx context.Context, items []any) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	var errs itemErrs
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	for i, it := range items {
		buf.Reset()
		if err := enc.Encode(it); err != nil {
			errs.add(i, unsupported("msgpack: %v", err))
			continue
		}
		out[i] = bytes.Clone(buf.Bytes())
	}
	return out, errs.err()
}

// maxMsgpackDepth bounds the nesting of decoded MessagePack values.
const maxMsgpackDepth = 10000

// Deserialize implements Serializer.
func (MsgpackSerializer) Deserialize(ctx context.Context, data [][]byte) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]any, len(data))
	var errs itemErrs
	for i, d := range data {
		v, err := decodeMsgpack(d)
		if err != nil {
			errs.add(i, err)
			continue
		}
		out[i] = v
	}
	return out, errs.err()
}

func decodeMsgpack(d []byte) (v any, err error) {
	// Check the structure first without recursion or allocation, so that
	// hostile lengths and nesting never reach the decoder.
	if err := checkMsgpack(d); err != nil {
		return nil, err
	}
	// The structure is valid; a value the decoder cannot represent (such
	// as a map keyed by arrays) must still not take the process down.
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, malformed("invalid msgpack: %v", p)
		}
	}()
	r := bytes.NewReader(d)
	dec := msgpack.NewDecoder(r)
	dec.UseLooseInterfaceDecoding(true)
	v, err = dec.DecodeInterface()
	if err != nil {
		return nil, malformed("invalid msgpack: %v", err)
	}
	if r.Len() != 0 {
		return nil, malformed("invalid msgpack: %d bytes after the value", r.Len())
	}
	return fixUints(v), nil
}

// fixUints turns the decoder's uint64 values that fit in an int64 into
// int64, so that an integer decodes to the same type whatever its encoding.
func fixUints(v any) any {
	switch x := v.(type) {
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	case []any:
		for i, e := range x {
			x[i] = fixUints(e)
		}
	case map[string]any:
		for k, e := range x {
			switch e.(type) {
			case uint64, []any, map[string]any, map[any]any:
				x[k] = fixUints(e)
			}
		}
	case map[any]any:
		for k, e := range x {
			x[k] = fixUints(e)
		}
	}
	return v
}

// checkMsgpack validates that d holds exactly one well-formed MessagePack
// value: every length fits in the input, the nesting is bounded, nothing
// follows the value.
func checkMsgpack(d []byte) error {
	if len(d) == 0 {
		return malformed("invalid msgpack: empty data")
	}
	pending := []uint64{1} // values still to read at each open level
	pos := 0
	need := func(n uint64, what string) error {
		if uint64(len(d)-pos) < n {
			return malformed("invalid msgpack: truncated %s at byte %d (needs %d bytes, %d left)", what, pos, n, len(d)-pos)
		}
		return nil
	}
	readN := func(n int) uint64 {
		var v uint64
		for j := 0; j < n; j++ {
			v = v<<8 | uint64(d[pos+j])
		}
		pos += n
		return v
	}
	for len(pending) > 0 {
		if pending[len(pending)-1] == 0 {
			pending = pending[:len(pending)-1]
			continue
		}
		pending[len(pending)-1]--
		if err := need(1, "type byte"); err != nil {
			return err
		}
		c := d[pos]
		pos++
		var skip, children uint64
		var lenBytes int
		container := false
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c >= 0x90 && c <= 0x9f:
			children, container = uint64(c&0x0f), true
		case c >= 0x80 && c <= 0x8f:
			children, container = 2*uint64(c&0x0f), true
		case c == 0xc4 || c == 0xd9:
			lenBytes = 1
		case c == 0xc5 || c == 0xda:
			lenBytes = 2
		case c == 0xc6 || c == 0xdb:
			lenBytes = 4
		case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8/16/32: length, type, data
			lenBytes = 1 << (c - 0xc7)
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xce || c == 0xd2 || c == 0xca:
			skip = 4
		case c == 0xcf || c == 0xd3 || c == 0xcb:
			skip = 8
		case c >= 0xd4 && c <= 0xd8: // fixext 1..16 plus type byte
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde:
			lenBytes, container = 2, true
		case c == 0xdd || c == 0xdf:
			lenBytes, container = 4, true
		default: // 0xc1 is never used
			return malformed("invalid msgpack: unknown type byte 0x%02x at byte %d", c, pos-1)
		}
		if lenBytes > 0 {
			if err := need(uint64(lenBytes), "length"); err != nil {
				return err
			}
			n := readN(lenBytes)
			switch {
			case container && (c == 0xde || c == 0xdf):
				children = 2 * n
			case container:
				children = n
			case c >= 0xc7 && c <= 0xc9:
				skip = n + 1
			default:
				skip = n
			}
		}
		if container {
			// Each child takes at least one byte.
			if uint64(len(d)-pos) < children {
				return malformed("invalid msgpack: container at byte %d declares %d elements but only %d bytes follow", pos, children, len(d)-pos)
			}
			if len(pending) >= maxMsgpackDepth {
				return malformed("invalid msgpack: nesting deeper than %d", maxMsgpackDepth)
			}
			pending = append(pending, children)
			continue
		}
		if err := need(skip, "value"); err != nil {
			return err
		}
		pos += int(skip)
	}
	if pos != len(d) {
		return malformed("invalid msgpack: %d bytes after the value", len(d)-pos)
	}
	return nil
}
