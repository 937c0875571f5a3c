package main

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// maxDepth is encoding/json's nesting limit, so that the scanner accepts
// exactly what json.Valid accepts.
const maxDepth = 10000

// span is a half-open byte range of the input; a zero span (end 0) is absent.
type span struct{ start, end int }

// topLevel is what the scanner finds in a JSON object: the number of
// members and the value spans of the watched top-level keys (the last
// occurrence wins, as with encoding/json's map decoding).
type topLevel struct {
	members int
	vals    [3]span
}

// scanner validates JSON the way encoding/json does (RFC 8259 grammar,
// control characters rejected in strings, bytes ≥ 0x80 accepted as they
// are, nesting up to 10000 levels) without allocating, and records the
// spans of the values of up to three top-level keys.
type scanner struct {
	b     []byte
	i     int
	depth int
	keys  [3]string
	top   topLevel
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// document scans a whole input; it returns whether it is valid JSON and
// whether its top-level value is an object.
func (s *scanner) document() (valid, object bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	object = s.b[s.i] == '{'
	if !s.value() {
		return false, false
	}
	s.ws()
	return s.i == len(s.b), object
}

func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return false
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// str scans a string starting at its opening quote; plain reports that it
// has no escapes and no bytes ≥ 0x80, so its content is its own value.
// Eight bytes at a time are tested for anything special (a quote, a
// backslash, a control character or a byte ≥ 0x80): a Go guest pays for
// every branch, so runs of ordinary characters cost one test per word.
func (s *scanner) str() (plain, ok bool) {
	b, i := s.b, s.i+1
	plain = true
	for {
		for i+8 <= len(b) {
			x := *(*uint64)(unsafe.Pointer(&b[i]))
			if special8(x) != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			return false, false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			if c >= 0x80 {
				plain = false
			}
			i++
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 is non-zero when one of the eight bytes of x (in any order) is
// below 0x20, at or above 0x80, a quote or a backslash.
func special8(x uint64) uint64 {
	lt := (x - ones*0x20) & ^x // high bit for a byte < 0x20 (or a borrow after one)
	q := x ^ (ones * '"')      // zero byte where x has a quote
	bs := x ^ (ones * '\\')    // zero byte where x has a backslash
	return (x | lt | (q-ones)&^q | (bs-ones)&^bs) & highs
}

func (s *scanner) enter() bool {
	s.depth++
	return s.depth <= maxDepth
}

func (s *scanner) array() bool {
	if !s.enter() {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if !s.value() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *scanner) object() bool {
	if !s.enter() {
		return false
	}
	top := s.depth == 1
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		kStart := s.i
		plain, ok := s.str()
		if !ok {
			return false
		}
		kEnd := s.i
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		vStart := s.i
		if !s.value() {
			return false
		}
		if top {
			s.top.members++
			s.watch(s.b[kStart:kEnd], plain, span{vStart, s.i})
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// watch records v when the quoted key raw is one of the watched keys.
func (s *scanner) watch(raw []byte, plain bool, v span) {
	var key []byte
	if plain {
		key = raw[1 : len(raw)-1]
	}
	for j, k := range s.keys {
		if k == "" {
			continue
		}
		if key == nil && !plain {
			// Escapes or non-ASCII: compare the decoded key (rare).
			var d string
			if json.Unmarshal(raw, &d) != nil {
				return
			}
			key = []byte(d)
		}
		if string(key) == k {
			s.top.vals[j] = v
		}
	}
}

// stringValue returns the string a top-level value decodes to, as
// json.Unmarshal into a string would: a JSON string, or "" for null (which
// leaves a string unchanged); ok is false for other values. A string without
// escapes or non-ASCII bytes is returned as a view of b.
func stringValue(b []byte, v span) (val []byte, ok bool) {
	if v.end == 0 {
		return nil, false
	}
	raw := b[v.start:v.end]
	switch raw[0] {
	case 'n':
		return nil, true
	case '"':
	default:
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			var d string
			if json.Unmarshal(raw, &d) != nil {
				return nil, false
			}
			return []byte(d), true
		}
	}
	return inner, true
}

// plainString reports whether json.Marshal quotes s without escaping
// anything: no control characters, quotes, backslashes, bytes ≥ 0x80 or
// HTML-sensitive <, > and &. It tests eight bytes at a time.
func plainString(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := *(*uint64)(unsafe.Pointer(unsafe.StringData(s[i:])))
		lt, gt, amp := x^(ones*'<'), x^(ones*'>'), x^(ones*'&')
		if special8(x)|((lt-ones)&^lt|(gt-ones)&^gt|(amp-ones)&^amp)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// quotedLen bounds the length of appendJSONString's output for s.
func quotedLen(s string) int {
	if !plainString(s) {
		return 6*len(s) + 2 // every byte as \u00XX or \ufffd at worst
	}
	return len(s) + 2
}

// appendJSONString appends s quoted exactly as json.Marshal quotes it
// (including its HTML-safe escapes of <, > and &).
func appendJSONString(dst []byte, s string) []byte {
	if !plainString(s) {
		b, _ := json.Marshal(s) // never fails for a string
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
