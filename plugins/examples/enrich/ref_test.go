package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// processRef is the encoding/json implementation the scanner replaced,
// kept as the reference its results are compared with. The enriched record keeps
// the input's bytes and field order and appends the metadata fields and the
// configured ones before the closing brace.
func (e *enricher) processRef(data []byte, m Meta) (Verdict, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		if len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] != '{' && json.Valid(data) {
			return Verdict{}, errNotObject
		}
		return Verdict{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if fields == nil {
		return Verdict{}, errNotObject
	}
	str := func(name string) (string, bool) {
		raw, ok := fields[name]
		if !ok || name == "" {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	if v, ok := str(e.cfg.SkipField); ok && e.skip.has([]byte(v)) {
		return Verdict{Skip: true, Message: fmt.Sprintf("%s=%s filtered", e.cfg.SkipField, v)}, nil
	}
	trimmed := bytes.TrimRight(data, " \t\r\n")
	out := make([]byte, 0, len(trimmed)+160+len(e.add))
	out = append(out, trimmed[:len(trimmed)-1]...) // without the closing brace
	sep := ","
	if len(fields) == 0 {
		sep = ""
	}
	out = append(out, sep...)
	out = append(out, `"_shard":`...)
	out = appendJSONStringRef(out, m.ShardID)
	out = append(out, `,"_sequence":`...)
	out = appendJSONStringRef(out, m.SequenceNumber)
	out = append(out, `,"_subsequence":`...)
	out = strconv.AppendInt(out, m.SubSequence, 10)
	out = append(out, `,"_partition_key":`...)
	out = appendJSONStringRef(out, m.PartitionKey)
	if m.ArrivalNanos != 0 {
		out = append(out, `,"_arrival":"`...)
		out = time.Unix(0, m.ArrivalNanos).UTC().AppendFormat(out, time.RFC3339Nano)
		out = append(out, '"')
	}
	out = append(out, e.add...)
	out = append(out, '}')
	v := Verdict{Out: out, OutKey: m.PartitionKey}
	if e.cfg.RouteField == "" {
		v.Emit = true
	} else if r, ok := str(e.cfg.RouteField); ok && e.route.has([]byte(r)) {
		v.Emit = true
	}
	if k, ok := str(e.cfg.PartitionKeyField); ok && k != "" {
		v.OutKey = k
	}
	return v, nil
}

func appendJSONStringRef(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // never fails for a string
	return append(dst, b...)
}
