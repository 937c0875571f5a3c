package records

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// KPLMagic starts every KPL aggregated record.
var KPLMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	kplOverhead = 4 + md5.Size // magic and MD5 trailer

	aggPartitionKeyTable    = 1
	aggExplicitHashKeyTable = 2
	aggRecords              = 3

	recPartitionKeyIndex    = 1
	recExplicitHashKeyIndex = 2
	recData                 = 3
	recTags                 = 4
)

// KPLAggregator packs user records in the Kinesis Producer Library's
// aggregated record format: magic F3 89 9A C2, a protobuf AggregatedRecord
// (partition_key_table = 1, explicit_hash_key_table = 2, records = 3 with
// partition_key_index = 1, explicit_hash_key_index = 2, data = 3, tags = 4)
// and the MD5 of the protobuf.
//
// Aggregate reproduces the reference aggregator (awslabs/kinesis-aggregation,
// Python) byte for byte, including where it closes a record: its size
// accounting counts, for every user record, a table entry for its keys and
// an index as large as the table, whether or not the key is already there.
// On top of that it also keeps the exact data plus the aggregate's partition
// key within maxSize, which the reference does not check.
type KPLAggregator struct {
	// Strict makes Deaggregate reject data without the KPL magic. By
	// default such data passes through as one non-aggregated record, as the
	// KCL does.
	Strict bool
}

func keyEntrySize(k string) int { return 1 + protowire.SizeVarint(uint64(len(k))) + len(k) }

// recordSize is the size of one Records entry (tag, length, message) with the
// given indexes; ehk < 0 means no explicit hash key.
func recordSize(pk, ehk int, data int) int {
	inner := 1 + protowire.SizeVarint(uint64(pk))
	if ehk >= 0 {
		inner += 1 + protowire.SizeVarint(uint64(ehk))
	}
	inner += 1 + protowire.SizeVarint(uint64(data)) + data
	return 1 + protowire.SizeVarint(uint64(inner)) + inner
}

// SizeAlone implements Aggregator.
func (KPLAggregator) SizeAlone(r UserRecord) int {
	n := kplOverhead + keyEntrySize(r.PartitionKey)
	ehk := -1
	if r.ExplicitHashKey != "" {
		n += keyEntrySize(r.ExplicitHashKey)
		ehk = 0
	}
	return n + recordSize(0, ehk, len(r.Data)) + len(r.PartitionKey)
}

type kplEntry struct {
	pk, ehk int
	data    []byte
}

type kplBuilder struct {
	pks, ehks     []string
	pkIdx, ehkIdx map[string]int
	entries       []kplEntry
	exact         int // exact protobuf size
	ref           int // reference aggregator's accounting
	aggPK, aggEHK string
}

func (b *kplBuilder) reset() {
	b.pks, b.ehks, b.entries = b.pks[:0], b.ehks[:0], b.entries[:0]
	clear(b.pkIdx)
	clear(b.ehkIdx)
	b.exact, b.ref = 0, 0
}

// sizes returns the exact and reference sizes r would add.
func (b *kplBuilder) sizes(r UserRecord) (exact, ref int) {
	ehkRef := -1
	if r.ExplicitHashKey != "" {
		ehkRef = len(b.ehks)
		ref += keyEntrySize(r.ExplicitHashKey)
	}
	ref += keyEntrySize(r.PartitionKey) + recordSize(len(b.pks), ehkRef, len(r.Data))

	pk, ok := b.pkIdx[r.PartitionKey]
	if !ok {
		pk = len(b.pks)
		exact += keyEntrySize(r.PartitionKey)
	}
	ehk := -1
	if r.ExplicitHashKey != "" {
		if ehk, ok = b.ehkIdx[r.ExplicitHashKey]; !ok {
			ehk = len(b.ehks)
			exact += keyEntrySize(r.ExplicitHashKey)
		}
	}
	return exact + recordSize(pk, ehk, len(r.Data)), ref
}

func (b *kplBuilder) add(r UserRecord, exact, ref int) {
	if len(b.entries) == 0 {
		b.aggPK, b.aggEHK = r.PartitionKey, r.ExplicitHashKey
	}
	pk, ok := b.pkIdx[r.PartitionKey]
	if !ok {
		pk = len(b.pks)
		b.pks = append(b.pks, r.PartitionKey)
		b.pkIdx[r.PartitionKey] = pk
	}
	ehk := -1
	if r.ExplicitHashKey != "" {
		if ehk, ok = b.ehkIdx[r.ExplicitHashKey]; !ok {
			ehk = len(b.ehks)
			b.ehks = append(b.ehks, r.ExplicitHashKey)
			b.ehkIdx[r.ExplicitHashKey] = ehk
		}
	}
	b.entries = append(b.entries, kplEntry{pk: pk, ehk: ehk, data: r.Data})
	b.exact += exact
	b.ref += ref
}

func (b *kplBuilder) build() Aggregated {
	buf := make([]byte, 0, kplOverhead+b.exact)
	buf = append(buf, KPLMagic...)
	for _, k := range b.pks {
		buf = protowire.AppendTag(buf, aggPartitionKeyTable, protowire.BytesType)
		buf = protowire.AppendString(buf, k)
	}
	for _, k := range b.ehks {
		buf = protowire.AppendTag(buf, aggExplicitHashKeyTable, protowire.BytesType)
		buf = protowire.AppendString(buf, k)
	}
	for _, e := range b.entries {
		inner := 1 + protowire.SizeVarint(uint64(e.pk)) + 1 + protowire.SizeVarint(uint64(len(e.data))) + len(e.data)
		if e.ehk >= 0 {
			inner += 1 + protowire.SizeVarint(uint64(e.ehk))
		}
		buf = protowire.AppendTag(buf, aggRecords, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(inner))
		buf = protowire.AppendTag(buf, recPartitionKeyIndex, protowire.VarintType)
		buf = protowire.AppendVarint(buf, uint64(e.pk))
		if e.ehk >= 0 {
			buf = protowire.AppendTag(buf, recExplicitHashKeyIndex, protowire.VarintType)
			buf = protowire.AppendVarint(buf, uint64(e.ehk))
		}
		buf = protowire.AppendTag(buf, recData, protowire.BytesType)
		buf = protowire.AppendBytes(buf, e.data)
	}
	sum := md5.Sum(buf[len(KPLMagic):])
	buf = append(buf, sum[:]...)
	return Aggregated{PartitionKey: b.aggPK, ExplicitHashKey: b.aggEHK, Data: buf, Count: len(b.entries)}
}

// Aggregate implements Aggregator.
func (a KPLAggregator) Aggregate(ctx context.Context, in []UserRecord, maxSize int) ([]Aggregated, error) {
	if err := checkAggregate(ctx, maxSize); err != nil {
		return nil, err
	}
	var out []Aggregated
	var errs itemErrs
	b := &kplBuilder{pkIdx: map[string]int{}, ehkIdx: map[string]int{}}
	for i, r := range in {
		if n := a.SizeAlone(r); n > maxSize {
			errs.add(i, tooLarge(n, maxSize))
			continue
		}
		exact, ref := b.sizes(r)
		if len(b.entries) > 0 && (kplOverhead+b.ref+ref > maxSize || kplOverhead+b.exact+exact+len(b.aggPK) > maxSize) {
			out = append(out, b.build())
			b.reset()
			exact, ref = b.sizes(r)
		}
		b.add(r, exact, ref)
	}
	if len(b.entries) > 0 {
		out = append(out, b.build())
	}
	return out, errs.err()
}

// Deaggregate implements Aggregator. Outputs take their partition key and
// explicit hash key from the aggregated record's tables and share the
// input's data array.
func (a KPLAggregator) Deaggregate(ctx context.Context, in []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(in))
	var errs itemErrs
	for i, r := range in {
		if !bytes.HasPrefix(r.Data, KPLMagic) {
			if a.Strict {
				errs.add(i, malformed("kpl: bad magic: data does not start with f3899ac2"))
				continue
			}
			out = append(out, sub(r, r.Data, 0, false))
			continue
		}
		start := len(out)
		var err error
		out, err = deaggregateKPL(out, r)
		if err != nil {
			out = out[:start]
			errs.add(i, err)
		}
	}
	return out, errs.err()
}

func deaggregateKPL(out []Record, r Record) ([]Record, error) {
	d := r.Data
	if len(d) < kplOverhead {
		return out, malformed("kpl: truncated data: %d bytes, an aggregated record has at least %d", len(d), kplOverhead)
	}
	body := d[len(KPLMagic) : len(d)-md5.Size]
	if sum := md5.Sum(body); !bytes.Equal(sum[:], d[len(d)-md5.Size:]) {
		return out, malformed("kpl: bad MD5: trailer %x, protobuf hashes to %x", d[len(d)-md5.Size:], sum)
	}
	var pks, ehks []string
	type rec struct {
		pk, ehk uint64
		hasEHK  bool
		data    []byte
	}
	var recs []rec
	for off := 0; off < len(body); {
		num, typ, n := protowire.ConsumeTag(body[off:])
		if n < 0 {
			return out, wireErr(n, "field tag at protobuf byte %d", off)
		}
		off += n
		if (num == aggPartitionKeyTable || num == aggExplicitHashKeyTable || num == aggRecords) && typ != protowire.BytesType {
			return out, malformed("kpl: bad field: AggregatedRecord field %d has wire type %d, want 2", num, typ)
		}
		if num != aggPartitionKeyTable && num != aggExplicitHashKeyTable && num != aggRecords {
			m := protowire.ConsumeFieldValue(num, typ, body[off:])
			if m < 0 {
				return out, wireErr(m, "AggregatedRecord field %d at protobuf byte %d", num, off)
			}
			off += m
			continue
		}
		v, m := protowire.ConsumeBytes(body[off:])
		if m < 0 {
			return out, wireErr(m, "AggregatedRecord field %d at protobuf byte %d", num, off)
		}
		off += m
		switch num {
		case aggPartitionKeyTable:
			pks = append(pks, string(v))
		case aggExplicitHashKeyTable:
			ehks = append(ehks, string(v))
		case aggRecords:
			rc, err := parseKPLRecord(v, len(recs))
			if err != nil {
				return out, err
			}
			recs = append(recs, rec{pk: rc.pk, ehk: rc.ehk, hasEHK: rc.hasEHK, data: rc.data})
		}
	}
	for i, rc := range recs {
		if rc.pk >= uint64(len(pks)) {
			return out, malformed("kpl: bad field: record %d has partition_key_index %d, table holds %d keys", i, rc.pk, len(pks))
		}
		s := sub(r, rc.data, i, true)
		s.PartitionKey = pks[rc.pk]
		s.ExplicitHashKey = ""
		if rc.hasEHK {
			if rc.ehk >= uint64(len(ehks)) {
				return out, malformed("kpl: bad field: record %d has explicit_hash_key_index %d, table holds %d keys", i, rc.ehk, len(ehks))
			}
			s.ExplicitHashKey = ehks[rc.ehk]
		}
		out = append(out, s)
	}
	return out, nil
}

type kplRecord struct {
	pk, ehk       uint64
	hasPK, hasEHK bool
	hasData       bool
	data          []byte
}

func parseKPLRecord(b []byte, i int) (kplRecord, error) {
	var rc kplRecord
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return rc, wireErr(n, "record %d field tag", i)
		}
		off += n
		switch num {
		case recPartitionKeyIndex, recExplicitHashKeyIndex:
			if typ != protowire.VarintType {
				return rc, malformed("kpl: bad field: record %d field %d has wire type %d, want 0", i, num, typ)
			}
			v, m := protowire.ConsumeVarint(b[off:])
			if m < 0 {
				return rc, wireErr(m, "record %d field %d", i, num)
			}
			off += m
			if num == recPartitionKeyIndex {
				rc.pk, rc.hasPK = v, true
			} else {
				rc.ehk, rc.hasEHK = v, true
			}
		case recData:
			if typ != protowire.BytesType {
				return rc, malformed("kpl: bad field: record %d field 3 has wire type %d, want 2", i, typ)
			}
			v, m := protowire.ConsumeBytes(b[off:])
			if m < 0 {
				return rc, wireErr(m, "record %d data", i)
			}
			off += m
			rc.data, rc.hasData = v, true
		default: // tags and unknown fields
			m := protowire.ConsumeFieldValue(num, typ, b[off:])
			if m < 0 {
				return rc, wireErr(m, "record %d field %d", i, num)
			}
			off += m
		}
	}
	if !rc.hasPK {
		return rc, malformed("kpl: bad field: record %d lacks the required partition_key_index", i)
	}
	if !rc.hasData {
		return rc, malformed("kpl: bad field: record %d lacks the required data", i)
	}
	if rc.data == nil {
		rc.data = []byte{}
	}
	return rc, nil
}

// wireErr describes a protowire parse failure (n < 0) at the given place.
func wireErr(n int, where string, args ...any) error {
	kind := "bad field"
	switch n {
	case -1: // protowire's code for truncated input
		kind = "truncated data"
	case -3: // protowire's code for a varint overflow
		kind = "bad varint"
	}
	return malformed("kpl: %s: %s: %v", kind, fmt.Sprintf(where, args...), protowire.ParseError(n))
}
