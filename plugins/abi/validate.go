package abi

import (
	"encoding/json"
	"fmt"
	"slices"
)

// CheckOutput checks the rules of ABI.md §5 that tie an output batch to the
// input batch of the same call: matching op, result indexes in range and
// strictly increasing, statuses allowed for the op, and the per-op record
// counts and maps. The host runs it on every guest output.
func CheckOutput(in, out *Batch) error {
	if out.Op != in.Op {
		return fmt.Errorf("output op is %s, input op is %s", out.Op, in.Op)
	}
	n := len(in.Records)
	failed := 0
	prev := -1
	for i := range out.Results {
		r := &out.Results[i]
		if int(r.Index) >= n {
			return fmt.Errorf("result %d names item %d of a %d-item batch", i, r.Index, n)
		}
		if int(r.Index) <= prev {
			return fmt.Errorf("result %d: item indexes must strictly increase (%d after %d)", i, r.Index, prev)
		}
		prev = int(r.Index)
		if in.Op != OpHandle && r.Status != StatusFail {
			return fmt.Errorf("result %d: %s may only report fail, got %s", i, in.Op, r.Status)
		}
		if r.Status == StatusFail {
			failed++
		}
	}
	switch in.Op {
	case OpSerialize, OpDeserialize:
		if len(out.Records) != n {
			return fmt.Errorf("%s returned %d records for %d inputs", in.Op, len(out.Records), n)
		}
	case OpAggregate:
		covered := 0
		for i := range out.Records {
			c := out.Records[i].Ref
			if c == 0 {
				return fmt.Errorf("aggregate output %d holds no inputs", i)
			}
			covered += int(c)
			if covered > n {
				return fmt.Errorf("aggregate outputs hold more than the %d inputs", n)
			}
		}
		if covered+failed != n {
			return fmt.Errorf("aggregate outputs hold %d inputs and %d failed, input had %d", covered, failed, n)
		}
	case OpDeaggregate:
		last := 0
		for i := range out.Records {
			ref := int(out.Records[i].Ref)
			if ref >= n {
				return fmt.Errorf("deaggregate output %d names input %d of %d", i, ref, n)
			}
			if ref < last {
				return fmt.Errorf("deaggregate output %d names input %d after input %d: outputs must keep input order", i, ref, last)
			}
			last = ref
		}
	}
	return nil
}

// Description is what describe returns.
type Description struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	ABI     int    `json:"abi"`
	Kinds   []Kind `json:"kinds"`
	// ItemEncoding is how serializer items cross the boundary; v1 defines
	// only "json".
	ItemEncoding string          `json:"item_encoding,omitempty"`
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	Summary      string          `json:"summary,omitempty"`
}

// Has reports whether d declares kind k.
func (d *Description) Has(k Kind) bool { return slices.Contains(d.Kinds, k) }

// ParseDescription parses and checks describe's JSON.
func ParseDescription(b []byte) (Description, error) {
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("describe returned invalid JSON: %w", err)
	}
	if d.Name == "" {
		return d, fmt.Errorf("describe: name is empty")
	}
	if d.ABI != Version {
		return d, fmt.Errorf("describe: plugin %q declares abi %d, want %d", d.Name, d.ABI, Version)
	}
	if len(d.Kinds) == 0 {
		return d, fmt.Errorf("describe: plugin %q declares no kinds", d.Name)
	}
	for _, k := range d.Kinds {
		if k.Exports() == nil {
			return d, fmt.Errorf("describe: plugin %q declares unknown kind %q", d.Name, k)
		}
	}
	if d.ItemEncoding != "" && d.ItemEncoding != "json" {
		return d, fmt.Errorf("describe: plugin %q uses item encoding %q, v1 knows only \"json\"", d.Name, d.ItemEncoding)
	}
	if len(d.ConfigSchema) > 0 && !json.Valid(d.ConfigSchema) {
		return d, fmt.Errorf("describe: plugin %q has an invalid config schema", d.Name)
	}
	return d, nil
}
