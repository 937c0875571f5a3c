package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack writes the JSON value as MessagePack with object keys in
// their JSON order, as Python's msgpack writes a dict.
func (o orderedJSON) EncodeMsgpack(enc *msgpack.Encoder) error {
	dec := json.NewDecoder(bytes.NewReader(o.raw))
	dec.UseNumber()
	return encodeJSONValue(enc, dec)
}

func encodeJSONValue(enc *msgpack.Encoder, dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			n := 0
			var buf bytes.Buffer
			sub := msgpack.NewEncoder(&buf)
			sub.UseCompactInts(true)
			for dec.More() {
				if err := encodeJSONValue(sub, dec); err != nil {
					return err
				}
				n++
			}
			_, _ = dec.Token()
			if err := enc.EncodeArrayLen(n); err != nil {
				return err
			}
			_, err := enc.Writer().Write(buf.Bytes())
			return err
		}
		n := 0
		var buf bytes.Buffer
		sub := msgpack.NewEncoder(&buf)
		sub.UseCompactInts(true)
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			if err := sub.EncodeString(k.(string)); err != nil {
				return err
			}
			if err := encodeJSONValue(sub, dec); err != nil {
				return err
			}
			n++
		}
		_, _ = dec.Token()
		if err := enc.EncodeMapLen(n); err != nil {
			return err
		}
		_, err := enc.Writer().Write(buf.Bytes())
		return err
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			i, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return err
			}
			return enc.EncodeInt(i)
		}
		f, err := v.Float64()
		if err != nil {
			return err
		}
		return enc.EncodeFloat64(f)
	case string:
		return enc.EncodeString(v)
	case bool:
		return enc.EncodeBool(v)
	case nil:
		return enc.EncodeNil()
	}
	return fmt.Errorf("unexpected JSON token %v", tok)
}
