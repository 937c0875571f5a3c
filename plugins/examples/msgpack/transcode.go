package main

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonToMsgpack transcodes one JSON value to msgpack the way Python's
// msgpack.packb(json.loads(x), use_bin_type=True) does: object key order is
// kept, integers take the smallest encoding, other numbers are float64.
func jsonToMsgpack(dst, src []byte) ([]byte, error) {
	p := jparser{src: src}
	p.ws()
	dst, err := p.value(dst, 0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.src) {
		return nil, p.errf("trailing data")
	}
	return dst, nil
}

type jparser struct {
	src []byte
	i   int
}

const maxDepth = 512

func (p *jparser) errf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jparser) ws() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) lit(s string) bool {
	if len(p.src)-p.i >= len(s) && string(p.src[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *jparser) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errf("nested deeper than %d", maxDepth)
	}
	if p.i >= len(p.src) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.src[p.i]; {
	case c == '{':
		p.i++
		hdr := len(dst)
		n := 0
		p.ws()
		if p.i < len(p.src) && p.src[p.i] == '}' {
			p.i++
			return insertHeader(dst, hdr, 0, 0x80, 0xde, 0xdf), nil
		}
		for {
			p.ws()
			if p.i >= len(p.src) || p.src[p.i] != '"' {
				return nil, p.errf("expected object key")
			}
			var err error
			if dst, err = p.str(dst); err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.src) || p.src[p.i] != ':' {
				return nil, p.errf("expected ':'")
			}
			p.i++
			p.ws()
			if dst, err = p.value(dst, depth+1); err != nil {
				return nil, err
			}
			n++
			p.ws()
			if p.i < len(p.src) && p.src[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.src) && p.src[p.i] == '}' {
				p.i++
				return insertHeader(dst, hdr, n, 0x80, 0xde, 0xdf), nil
			}
			return nil, p.errf("expected ',' or '}'")
		}
	case c == '[':
		p.i++
		hdr := len(dst)
		n := 0
		p.ws()
		if p.i < len(p.src) && p.src[p.i] == ']' {
			p.i++
			return insertHeader(dst, hdr, 0, 0x90, 0xdc, 0xdd), nil
		}
		for {
			p.ws()
			var err error
			if dst, err = p.value(dst, depth+1); err != nil {
				return nil, err
			}
			n++
			p.ws()
			if p.i < len(p.src) && p.src[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.src) && p.src[p.i] == ']' {
				p.i++
				return insertHeader(dst, hdr, n, 0x90, 0xdc, 0xdd), nil
			}
			return nil, p.errf("expected ',' or ']'")
		}
	case c == '"':
		return p.str(dst)
	case c == 't':
		if p.lit("true") {
			return append(dst, 0xc3), nil
		}
	case c == 'f':
		if p.lit("false") {
			return append(dst, 0xc2), nil
		}
	case c == 'n':
		if p.lit("null") {
			return append(dst, 0xc0), nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(dst)
	}
	return nil, p.errf("unexpected character %q", p.src[p.i])
}

// insertHeader puts a container header for n elements before dst[at:].
func insertHeader(dst []byte, at, n int, fix, b16, b32 byte) []byte {
	var h [5]byte
	var hl int
	switch {
	case n < 16:
		h[0], hl = fix|byte(n), 1
	case n <= math.MaxUint16:
		h[0] = b16
		binary.BigEndian.PutUint16(h[1:], uint16(n))
		hl = 3
	default:
		h[0] = b32
		binary.BigEndian.PutUint32(h[1:], uint32(n))
		hl = 5
	}
	dst = append(dst, h[:hl]...)
	copy(dst[at+hl:], dst[at:len(dst)-hl])
	copy(dst[at:], h[:hl])
	return dst
}

func (p *jparser) number(dst []byte) ([]byte, error) {
	start := p.i
	isFloat := false
	if p.src[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		s := p.i
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			p.i++
		}
		return p.i - s
	}
	intStart := p.i
	if n := digits(); n == 0 || (n > 1 && p.src[intStart] == '0') {
		return nil, p.errf("bad number")
	}
	if p.i < len(p.src) && p.src[p.i] == '.' {
		isFloat = true
		p.i++
		if digits() == 0 {
			return nil, p.errf("bad fraction")
		}
	}
	if p.i < len(p.src) && (p.src[p.i] == 'e' || p.src[p.i] == 'E') {
		isFloat = true
		p.i++
		if p.i < len(p.src) && (p.src[p.i] == '+' || p.src[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errf("bad exponent")
		}
	}
	if !isFloat && p.i-start <= 18 {
		// Fits in int64 for sure: no string, no allocation.
		neg := p.src[start] == '-'
		var v int64
		for _, c := range p.src[intStart:p.i] {
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		return appendInt(dst, v), nil
	}
	text := string(p.src[start:p.i])
	if !isFloat {
		if v, err := strconv.ParseInt(text, 10, 64); err == nil {
			return appendInt(dst, v), nil
		}
		if v, err := strconv.ParseUint(text, 10, 64); err == nil {
			return appendUint(dst, v), nil
		}
		return nil, fmt.Errorf("integer %s does not fit in 64 bits", text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", text, err)
	}
	dst = append(dst, 0xcb)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(dst, uint64(v))
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

// str decodes a JSON string at p.i and appends it as a msgpack str.
func (p *jparser) str(dst []byte) ([]byte, error) {
	p.i++ // opening quote
	hdr := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0) // room for the longest header
	body := len(dst)
	for {
		if p.i >= len(p.src) {
			return nil, p.errf("unterminated string")
		}
		c := p.src[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(dst[body:]) {
				return nil, p.errf("string is not valid UTF-8")
			}
			return strHeader(dst, hdr, body), nil
		case c == '\\':
			p.i++
			if p.i >= len(p.src) {
				return nil, p.errf("unterminated escape")
			}
			e := p.src[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return nil, p.errf("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					save := p.i
					if p.lit(`\u`) {
						if x, ok := p.hex4(); ok {
							r2 = x
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						p.i = save
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return nil, p.errf("bad escape \\%c", e)
			}
		case c < 0x20:
			return nil, p.errf("control character in string")
		default:
			dst = append(dst, c)
			p.i++
		}
	}
}

func (p *jparser) hex4() (rune, bool) {
	if len(p.src)-p.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.src[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// strHeader writes the str header for dst[body:] at hdr, closing the gap
// left by the 5 reserved bytes.
func strHeader(dst []byte, hdr, body int) []byte {
	n := len(dst) - body
	var h [5]byte
	var hl int
	switch {
	case n < 32:
		h[0], hl = 0xa0|byte(n), 1
	case n <= math.MaxUint8:
		h[0], h[1], hl = 0xd9, byte(n), 2
	case n <= math.MaxUint16:
		h[0] = 0xda
		binary.BigEndian.PutUint16(h[1:], uint16(n))
		hl = 3
	default:
		h[0] = 0xdb
		binary.BigEndian.PutUint32(h[1:], uint32(n))
		hl = 5
	}
	copy(dst[hdr:], h[:hl])
	copy(dst[hdr+hl:], dst[body:])
	return dst[:hdr+hl+n]
}

var errTruncated = errors.New("truncated msgpack")

// msgpackToJSON transcodes one msgpack value to JSON. bin values become
// base64 strings; non-string map keys become their JSON text.
func msgpackToJSON(dst, src []byte) ([]byte, error) {
	m := mparser{src: src}
	dst, err := m.value(dst, 0)
	if err != nil {
		return nil, err
	}
	if m.i != len(src) {
		return nil, fmt.Errorf("msgpack: %d trailing bytes", len(src)-m.i)
	}
	return dst, nil
}

type mparser struct {
	src []byte
	i   int
}

func (m *mparser) take(n int) ([]byte, error) {
	if n < 0 || len(m.src)-m.i < n {
		return nil, errTruncated
	}
	b := m.src[m.i : m.i+n]
	m.i += n
	return b, nil
}

func (m *mparser) uint(n int) (uint64, error) {
	b, err := m.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v, nil
}

func (m *mparser) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("msgpack nested deeper than %d", maxDepth)
	}
	b, err := m.take(1)
	if err != nil {
		return nil, err
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return strconv.AppendUint(dst, uint64(c), 10), nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), nil
	case c&0xf0 == 0x80:
		return m.mapN(dst, int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return m.arrN(dst, int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return m.strN(dst, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), nil
	case 0xc2:
		return append(dst, "false"...), nil
	case 0xc3:
		return append(dst, "true"...), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := m.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		return strconv.AppendUint(dst, v, 10), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		v, err := m.uint(n)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*n
		return strconv.AppendInt(dst, int64(v<<shift)>>shift, 10), nil
	case 0xca, 0xcb:
		var f float64
		if c == 0xca {
			v, err := m.uint(4)
			if err != nil {
				return nil, err
			}
			f = float64(math.Float32frombits(uint32(v)))
		} else {
			v, err := m.uint(8)
			if err != nil {
				return nil, err
			}
			f = math.Float64frombits(v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("msgpack float %v has no JSON form", f)
		}
		return appendFloat(dst, f), nil
	case 0xd9, 0xda, 0xdb:
		n, err := m.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return m.strN(dst, int(n))
	case 0xc4, 0xc5, 0xc6:
		n, err := m.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		raw, err := m.take(int(n))
		if err != nil {
			return nil, err
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, raw)
		return append(dst, '"'), nil
	case 0xdc, 0xdd:
		n, err := m.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return m.arrN(dst, int(n), depth)
	case 0xde, 0xdf:
		n, err := m.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return m.mapN(dst, int(n), depth)
	}
	return nil, fmt.Errorf("msgpack type byte %#02x is not supported", c)
}

func appendFloat(dst []byte, f float64) []byte {
	s := strconv.AppendFloat(dst, f, 'g', -1, 64)
	// Keep a float recognisable as one, as Python's json does ("1.0").
	for _, c := range s[len(dst):] {
		if c == '.' || c == 'e' || c == 'n' || c == 'N' {
			return s
		}
	}
	return append(s, ".0"...)
}

func (m *mparser) strN(dst []byte, n int) ([]byte, error) {
	s, err := m.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(s) {
		return nil, errors.New("msgpack str is not valid UTF-8")
	}
	return appendJSONString(dst, s), nil
}

func (m *mparser) arrN(dst []byte, n, depth int) ([]byte, error) {
	if n > len(m.src)-m.i {
		return nil, errTruncated
	}
	dst = append(dst, '[')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = m.value(dst, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

func (m *mparser) mapN(dst []byte, n, depth int) ([]byte, error) {
	if n > (len(m.src)-m.i)/2 {
		return nil, errTruncated
	}
	dst = append(dst, '{')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		start := len(dst)
		var err error
		if dst, err = m.value(dst, depth+1); err != nil {
			return nil, err
		}
		if dst[start] != '"' { // a non-string key becomes its JSON text
			key := string(dst[start:])
			dst = appendJSONString(dst[:start], []byte(key))
		}
		dst = append(dst, ':')
		if dst, err = m.value(dst, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
