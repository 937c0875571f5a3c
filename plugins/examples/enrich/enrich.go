package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Config is the plugin's configuration (init JSON).
type Config struct {
	// SkipField and SkipValues: records whose SkipField (a top-level string
	// field) has one of SkipValues are skipped. Default: "type" in
	// ["heartbeat"].
	SkipField  string   `json:"skip_field"`
	SkipValues []string `json:"skip_values"`
	// Add is merged into every record that is kept.
	Add map[string]any `json:"add"`
	// RouteField and RouteValues: kept records whose RouteField has one of
	// RouteValues are emitted to the output stream. Empty RouteField emits
	// every kept record. Default: "level" in ["error", "warn"].
	RouteField  string   `json:"route_field"`
	RouteValues []string `json:"route_values"`
	// PartitionKeyField, when set and present, is the emitted record's
	// partition key; otherwise the input's partition key is kept.
	PartitionKeyField string `json:"partition_key_field"`
}

const configSchema = `{"type":"object","properties":{
"skip_field":{"type":"string"},"skip_values":{"type":"array","items":{"type":"string"}},
"add":{"type":"object"},
"route_field":{"type":"string"},"route_values":{"type":"array","items":{"type":"string"}},
"partition_key_field":{"type":"string"}},"additionalProperties":false}`

func defaultConfig() Config {
	return Config{SkipField: "type", SkipValues: []string{"heartbeat"}, RouteField: "level", RouteValues: []string{"error", "warn"}}
}

func parseConfig(b []byte) (Config, error) {
	c := defaultConfig()
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return c, fmt.Errorf("enrich config: %w", err)
	}
	return c, nil
}

// Meta is the record metadata the enricher adds.
type Meta struct {
	ShardID, SequenceNumber, PartitionKey string
	SubSequence                           int64
	ArrivalNanos                          int64
}

// Verdict of the enricher on one record.
type Verdict struct {
	Skip    bool
	Emit    bool
	Out     []byte // the enriched JSON
	OutKey  string
	Message string
}

type enricher struct {
	cfg   Config
	add   []byte // pre-encoded `"k":v` pairs of cfg.Add, comma-separated
	skip  valueSet
	route valueSet
}

func newEnricher(c Config) (*enricher, error) {
	e := &enricher{cfg: c, skip: newValueSet(c.SkipValues), route: newValueSet(c.RouteValues)}
	keys := make([]string, 0, len(c.Add))
	for k := range c.Add {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(c.Add[k])
		if err != nil {
			return nil, fmt.Errorf("enrich config: add[%q]: %w", k, err)
		}
		e.add = append(e.add, ',')
		e.add = append(e.add, kb...)
		e.add = append(e.add, ':')
		e.add = append(e.add, vb...)
	}
	return e, nil
}

// valueSet is a set of strings. A few values are compared one by one, which
// in a Go WebAssembly guest costs far fewer branches than hashing for a map
// lookup; many go into a map.
type valueSet struct {
	list []string
	m    map[string]bool
}

func newValueSet(vs []string) valueSet {
	if len(vs) <= 8 {
		return valueSet{list: vs}
	}
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return valueSet{m: m}
}

func (s valueSet) has(v []byte) bool {
	if s.m != nil {
		return s.m[string(v)]
	}
	for _, x := range s.list {
		if x == string(v) {
			return true
		}
	}
	return false
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

var errNotObject = errors.New("record is not a JSON object")

// Indexes of the watched top-level fields in scanner.keys.
const (
	fieldSkip = iota
	fieldRoute
	fieldKey
)

// process filters, enriches and routes one record. The enriched record keeps
// the input's bytes and field order and appends the metadata fields and the
// configured ones before the closing brace.
func (e *enricher) process(data []byte, m Meta) (Verdict, error) {
	return e.processTo(nil, true, data, m)
}

// outSize bounds the size of the enriched record made from data and m.
func (e *enricher) outSize(data []byte, m Meta) int {
	// 64: the fixed field names, separators, an int64 and a timestamp.
	return len(data) + len(e.add) + 64 + quotedLen(m.ShardID) + quotedLen(m.SequenceNumber) + quotedLen(m.PartitionKey) + len(`,"_arrival":"2006-01-02T15:04:05.999999999Z"`)
}

// processTo is process building the enriched record in memory from alloc
// (called with the size it needs; nil allocates); unless all is
// set, it builds it only for records that are emitted. It scans the record
// once, validating it and finding the watched top-level fields without
// decoding it into maps.
func (e *enricher) processTo(alloc func(n int) []byte, all bool, data []byte, m Meta) (Verdict, error) {
	s := scanner{b: data, keys: [3]string{e.cfg.SkipField, e.cfg.RouteField, e.cfg.PartitionKeyField}}
	valid, object := s.document()
	if !valid {
		var fields map[string]json.RawMessage
		err := json.Unmarshal(data, &fields)
		if err == nil { // the scanner and encoding/json disagree: trust the latter's message
			err = errors.New("rejected by the scanner")
		}
		return Verdict{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if !object {
		return Verdict{}, errNotObject
	}
	if v, ok := stringValue(data, s.top.vals[fieldSkip]); ok && e.skip.has(v) {
		return Verdict{Skip: true, Message: fmt.Sprintf("%s=%s filtered", e.cfg.SkipField, v)}, nil
	}
	v := Verdict{OutKey: m.PartitionKey}
	if e.cfg.RouteField == "" {
		v.Emit = true
	} else if r, ok := stringValue(data, s.top.vals[fieldRoute]); ok && e.route.has(r) {
		v.Emit = true
	}
	if k, ok := stringValue(data, s.top.vals[fieldKey]); ok && len(k) > 0 {
		v.OutKey = string(k)
	}
	if !v.Emit && !all {
		return v, nil
	}
	trimmed := data
	for isSpace(trimmed[len(trimmed)-1]) {
		trimmed = trimmed[:len(trimmed)-1]
	}
	var out []byte
	if alloc != nil {
		out = alloc(e.outSize(trimmed, m))
	} else {
		out = make([]byte, 0, e.outSize(trimmed, m))
	}
	out = append(out, trimmed[:len(trimmed)-1]...) // without the closing brace
	if s.top.members > 0 {
		out = append(out, ',')
	}
	out = append(out, `"_shard":`...)
	out = appendJSONString(out, m.ShardID)
	out = append(out, `,"_sequence":`...)
	out = appendJSONString(out, m.SequenceNumber)
	out = append(out, `,"_subsequence":`...)
	out = strconv.AppendInt(out, m.SubSequence, 10)
	out = append(out, `,"_partition_key":`...)
	out = appendJSONString(out, m.PartitionKey)
	if m.ArrivalNanos != 0 {
		out = append(out, `,"_arrival":"`...)
		out = time.Unix(0, m.ArrivalNanos).UTC().AppendFormat(out, time.RFC3339Nano)
		out = append(out, '"')
	}
	out = append(out, e.add...)
	out = append(out, '}')
	v.Out = out
	return v, nil
}
