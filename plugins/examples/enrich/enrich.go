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
	skip  map[string]bool
	route map[string]bool
}

func newEnricher(c Config) (*enricher, error) {
	e := &enricher{cfg: c, skip: map[string]bool{}, route: map[string]bool{}}
	for _, v := range c.SkipValues {
		e.skip[v] = true
	}
	for _, v := range c.RouteValues {
		e.route[v] = true
	}
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

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

var errNotObject = errors.New("record is not a JSON object")

// process filters, enriches and routes one record. The enriched record keeps
// the input's bytes and field order and appends the metadata fields and the
// configured ones before the closing brace.
func (e *enricher) process(data []byte, m Meta) (Verdict, error) {
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
	if v, ok := str(e.cfg.SkipField); ok && e.skip[v] {
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
	v := Verdict{Out: out, OutKey: m.PartitionKey}
	if e.cfg.RouteField == "" {
		v.Emit = true
	} else if r, ok := str(e.cfg.RouteField); ok && e.route[r] {
		v.Emit = true
	}
	if k, ok := str(e.cfg.PartitionKeyField); ok && k != "" {
		v.OutKey = k
	}
	return v, nil
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // never fails for a string
	return append(dst, b...)
}
