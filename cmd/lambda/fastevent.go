package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

// kinesisInvoker is the consumer as a lambda.Handler: it reads the event
// with parseKinesisEvent instead of reflection-driven encoding/json, which
// is most of a warm invocation's time for a large batch.
type kinesisInvoker struct{ c *consumer }

// Invoke implements lambda.Handler.
func (k kinesisInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	in, ok := parseKinesisEvent(payload)
	if !ok {
		var ev events.KinesisEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		in = make([]records.Record, len(ev.Records))
		for i, r := range ev.Records {
			in[i] = kinesisRecord(r)
		}
	}
	resp := k.c.handleRecords(ctx, in)
	return json.Marshal(resp)
}

// parseKinesisEvent reads the fields of a Kinesis event that the consumer
// uses (Records[].eventID, .kinesis.data, .partitionKey, .sequenceNumber,
// .approximateArrivalTimestamp), skipping the rest. It reports false for
// anything it does not handle exactly as encoding/json would (escaped or
// non-UTF-8 strings, nulls, keys that differ from the field names only in
// case, malformed JSON); the caller then uses encoding/json. The record
// data of all records shares one buffer.
func parseKinesisEvent(p []byte) ([]records.Record, bool) {
	s := scanner{b: p}
	var out []records.Record
	var arena []byte
	ok := s.object(func(key []byte) bool {
		if string(key) != "Records" {
			return !strings.EqualFold(string(key), "Records") && s.skip()
		}
		out = out[:0]
		if s.peek() == '[' {
			// An estimate from the payload size: one buffer for all data.
			arena = make([]byte, 0, len(p)*3/4)
		}
		return s.array(func() bool {
			var r records.Record
			if !s.object(func(key []byte) bool {
				switch string(key) {
				case "eventID":
					v, ok := s.str()
					if !ok {
						return false
					}
					r.ShardID, _, _ = strings.Cut(string(v), ":")
					return true
				case "kinesis":
					return s.object(func(key []byte) bool {
						switch string(key) {
						case "data":
							v, ok := s.str()
							if !ok {
								return false
							}
							start := len(arena)
							if cap(arena)-start < base64.StdEncoding.DecodedLen(len(v)) {
								arena = make([]byte, 0, max(base64.StdEncoding.DecodedLen(len(v)), 64<<10))
								start = 0
							}
							n, err := base64.StdEncoding.Decode(arena[start:start+base64.StdEncoding.DecodedLen(len(v))], v)
							if err != nil {
								return false
							}
							arena = arena[:start+n]
							r.Data = arena[start : start+n : start+n]
							return true
						case "partitionKey":
							v, ok := s.str()
							r.PartitionKey = string(v)
							return ok
						case "sequenceNumber":
							v, ok := s.str()
							r.SequenceNumber = string(v)
							return ok
						case "approximateArrivalTimestamp":
							v, ok := s.number()
							if !ok {
								return false
							}
							f, err := strconv.ParseFloat(string(v), 64)
							if err != nil {
								return false
							}
							sec := int64(f)
							r.ArrivalTime = time.Unix(sec, int64((f-float64(sec))*1e9))
							return true
						}
						return !foldsTo(key, "data", "partitionKey", "sequenceNumber", "approximateArrivalTimestamp") && s.skip()
					})
				}
				return !foldsTo(key, "eventID", "kinesis") && s.skip()
			}) {
				return false
			}
			out = append(out, r)
			return true
		})
	})
	if !ok {
		return nil, false
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	return out, true
}

// foldsTo reports whether key equals one of names ignoring case but not
// exactly: encoding/json would match it to that field.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// scanner walks JSON for parseKinesisEvent. Every method reports false on
// input it does not accept.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads {"key": value, ...}, calling field for each key with the
// scanner before the value; field must consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !field(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(elem func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string without escapes, in valid UTF-8, and returns its
// contents (a view into the input).
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	end := bytes.IndexByte(s.b[start:], '"')
	if end < 0 {
		return nil, false
	}
	v := s.b[start : start+end]
	ascii := true
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(v) {
		return nil, false
	}
	s.i = start + end + 1
	return v, true
}

// number reads a JSON number.
func (s *scanner) number() ([]byte, bool) {
	s.ws()
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	s.i = i
	return b[start:i], true
}

// skip passes over any JSON value (strings may hold escapes here).
func (s *scanner) skip() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		i := s.i + 1
		for i < len(s.b) {
			switch c := s.b[i]; {
			case c == '"':
				s.i = i + 1
				return true
			case c == '\\':
				if i+1 >= len(s.b) {
					return false
				}
				switch s.b[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					i += 2
				case 'u':
					if i+6 > len(s.b) {
						return false
					}
					for _, h := range s.b[i+2 : i+6] {
						if !strings.ContainsRune("0123456789abcdefABCDEF", rune(h)) {
							return false
						}
					}
					i += 6
				default:
					return false
				}
			case c < 0x20:
				return false
			default:
				i++
			}
		}
		return false
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		_, ok := s.number()
		return ok
	}
}

func (s *scanner) lit(w string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}
