package main

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic starts every KPL aggregated record.
var Magic = []byte{0xF3, 0x89, 0x9A, 0xC2}

const digestSize = md5.Size

// UserRecord is one record inside an aggregate.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string // "" = none
	Data            []byte
}

// aggregator accumulates records for one aggregate, with the size
// accounting of the reference aggregator (awslabs/kinesis-aggregation):
// each record's estimate counts its partition key (and explicit hash key)
// table entry even when the key is already in the table, so aggregates close
// slightly earlier than their real size requires. Matching that estimate is
// what makes the output byte-identical to the reference.
type aggregator struct {
	maxSize  int
	pks      map[string]uint64
	pkOrder  []string
	ehks     map[string]uint64
	ehkOrder []string
	recs     []UserRecord
	estimate int // estimated protobuf size
	size     int // exact protobuf size
}

func newAggregator(maxSize int) *aggregator {
	return &aggregator{maxSize: maxSize, pks: map[string]uint64{}, ehks: map[string]uint64{}}
}

func (a *aggregator) reset() {
	clear(a.pks)
	clear(a.ehks)
	a.pkOrder, a.ehkOrder, a.recs = a.pkOrder[:0], a.ehkOrder[:0], a.recs[:0]
	a.estimate, a.size = 0, 0
}

func tableEntry(s string) int { return 1 + protowire.SizeBytes(len(s)) }

// recordSize is the size of the Record message for r with the given
// indexes, without its field-3 tag and length.
func recordSize(pkIdx uint64, ehk bool, ehkIdx uint64, dataLen int) int {
	n := 1 + protowire.SizeVarint(pkIdx)
	if ehk {
		n += 1 + protowire.SizeVarint(ehkIdx)
	}
	return n + 1 + protowire.SizeBytes(dataLen)
}

// cost returns the estimated (reference accounting) and the exact growth of
// the protobuf if r were added. The reference counts a table entry for each
// key and indexes as large as the tables, whether or not the keys are
// already in them.
func (a *aggregator) cost(r *UserRecord) (estimate, exact int) {
	hasEHK := r.ExplicitHashKey != ""
	estimate = tableEntry(r.PartitionKey)
	if hasEHK {
		estimate += tableEntry(r.ExplicitHashKey)
	}
	inner := recordSize(uint64(len(a.pkOrder)), hasEHK, uint64(len(a.ehkOrder)), len(r.Data))
	estimate += 1 + protowire.SizeBytes(inner)

	pkIdx, havePK := a.pks[r.PartitionKey]
	if !havePK {
		pkIdx = uint64(len(a.pkOrder))
		exact += tableEntry(r.PartitionKey)
	}
	var ehkIdx uint64
	if hasEHK {
		var have bool
		if ehkIdx, have = a.ehks[r.ExplicitHashKey]; !have {
			ehkIdx = uint64(len(a.ehkOrder))
			exact += tableEntry(r.ExplicitHashKey)
		}
	}
	inner = recordSize(pkIdx, hasEHK, ehkIdx, len(r.Data))
	return estimate, exact + 1 + protowire.SizeBytes(inner)
}

// fits reports whether r can join the current aggregate: under the
// reference's estimate (which decides where the reference closes a record)
// and, exactly, with the aggregate's partition key, since Kinesis counts
// data plus partition key.
func (a *aggregator) fits(r *UserRecord) bool {
	if len(a.recs) == 0 {
		return true
	}
	est, exact := a.cost(r)
	return len(Magic)+a.estimate+est+digestSize <= a.maxSize &&
		len(Magic)+a.size+exact+digestSize+len(a.recs[0].PartitionKey) <= a.maxSize
}

func (a *aggregator) add(r UserRecord) {
	est, exact := a.cost(&r)
	a.estimate += est
	a.size += exact
	if _, ok := a.pks[r.PartitionKey]; !ok {
		a.pks[r.PartitionKey] = uint64(len(a.pkOrder))
		a.pkOrder = append(a.pkOrder, r.PartitionKey)
	}
	if r.ExplicitHashKey != "" {
		if _, ok := a.ehks[r.ExplicitHashKey]; !ok {
			a.ehks[r.ExplicitHashKey] = uint64(len(a.ehkOrder))
			a.ehkOrder = append(a.ehkOrder, r.ExplicitHashKey)
		}
	}
	a.recs = append(a.recs, r)
}

// encode appends the aggregate (magic, protobuf, MD5) to dst.
func (a *aggregator) encode(dst []byte) []byte {
	dst = append(dst, Magic...)
	pb := len(dst)
	for _, k := range a.pkOrder {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	for _, k := range a.ehkOrder {
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	for i := range a.recs {
		r := &a.recs[i]
		hasEHK := r.ExplicitHashKey != ""
		var ehkIdx uint64
		if hasEHK {
			ehkIdx = a.ehks[r.ExplicitHashKey]
		}
		pkIdx := a.pks[r.PartitionKey]
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(recordSize(pkIdx, hasEHK, ehkIdx, len(r.Data))))
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		dst = protowire.AppendVarint(dst, pkIdx)
		if hasEHK {
			dst = protowire.AppendTag(dst, 2, protowire.VarintType)
			dst = protowire.AppendVarint(dst, ehkIdx)
		}
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.Data)
	}
	sum := md5.Sum(dst[pb:])
	return append(dst, sum[:]...)
}

// sizeAlone is the size of an aggregate holding one record, as Kinesis
// counts it (data plus partition key).
func sizeAlone(pkLen, ehkLen, dataLen int) int {
	n := 1 + protowire.SizeBytes(pkLen)
	if ehkLen > 0 {
		n += 1 + protowire.SizeBytes(ehkLen)
	}
	inner := 1 + 1 + 1 + protowire.SizeBytes(dataLen)
	if ehkLen > 0 {
		inner += 2
	}
	n += 1 + protowire.SizeBytes(inner)
	return len(Magic) + n + digestSize + pkLen
}

// ErrNotAggregate is returned by parse for data without the KPL magic.
var ErrNotAggregate = errors.New("not a KPL aggregated record")

// parse unpacks a KPL aggregated record, checking magic, MD5, the protobuf
// structure and every table index.
func parse(data []byte, each func(r UserRecord)) error {
	if len(data) < len(Magic)+digestSize || !bytes.Equal(data[:len(Magic)], Magic) {
		return ErrNotAggregate
	}
	pb := data[len(Magic) : len(data)-digestSize]
	sum := md5.Sum(pb)
	if !bytes.Equal(sum[:], data[len(data)-digestSize:]) {
		return errors.New("kpl: MD5 digest does not match the protobuf")
	}
	var pks, ehks []string
	type rec struct {
		pk, ehk uint64
		hasEHK  bool
		data    []byte
	}
	var recs []rec
	for len(pb) > 0 {
		num, typ, n := protowire.ConsumeTag(pb)
		if n < 0 {
			return fmt.Errorf("kpl: bad tag: %w", protowire.ParseError(n))
		}
		pb = pb[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, pb)
			if n < 0 {
				return fmt.Errorf("kpl: bad field %d: %w", num, protowire.ParseError(n))
			}
			pb = pb[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(pb)
		if n < 0 {
			return fmt.Errorf("kpl: bad field %d: %w", num, protowire.ParseError(n))
		}
		pb = pb[n:]
		switch num {
		case 1:
			pks = append(pks, string(v))
		case 2:
			ehks = append(ehks, string(v))
		case 3:
			var r rec
			var havePK, haveData bool
			for len(v) > 0 {
				fn, ft, m := protowire.ConsumeTag(v)
				if m < 0 {
					return fmt.Errorf("kpl: record %d: bad tag", len(recs))
				}
				v = v[m:]
				switch {
				case fn == 1 && ft == protowire.VarintType:
					r.pk, m = protowire.ConsumeVarint(v)
					havePK = true
				case fn == 2 && ft == protowire.VarintType:
					r.ehk, m = protowire.ConsumeVarint(v)
					r.hasEHK = true
				case fn == 3 && ft == protowire.BytesType:
					r.data, m = protowire.ConsumeBytes(v)
					haveData = true
				default:
					m = protowire.ConsumeFieldValue(fn, ft, v) // tags (field 4) and unknown fields
				}
				if m < 0 {
					return fmt.Errorf("kpl: record %d: bad field %d", len(recs), fn)
				}
				v = v[m:]
			}
			if !havePK || !haveData {
				return fmt.Errorf("kpl: record %d lacks its partition key index or data", len(recs))
			}
			recs = append(recs, r)
		}
	}
	for i, r := range recs {
		if r.pk >= uint64(len(pks)) {
			return fmt.Errorf("kpl: record %d: partition key index %d, table has %d", i, r.pk, len(pks))
		}
		if r.hasEHK && r.ehk >= uint64(len(ehks)) {
			return fmt.Errorf("kpl: record %d: explicit hash key index %d, table has %d", i, r.ehk, len(ehks))
		}
	}
	for _, r := range recs {
		u := UserRecord{PartitionKey: pks[r.pk], Data: r.data}
		if r.hasEHK {
			u.ExplicitHashKey = ehks[r.ehk]
		}
		each(u)
	}
	return nil
}

// aggregateAll packs records in order, starting a new aggregate when the next
// record does not fit. Records too large even alone are reported by index.
func aggregateAll(in []UserRecord, maxSize int, emit func(pk, ehk string, data []byte, count int), tooBig func(i int, err error)) {
	a := newAggregator(maxSize)
	flush := func() {
		if len(a.recs) == 0 {
			return
		}
		first := a.recs[0]
		emit(first.PartitionKey, first.ExplicitHashKey, a.encode(make([]byte, 0, len(Magic)+a.size+digestSize)), len(a.recs))
		a.reset()
	}
	for i, r := range in {
		alone := sizeAlone(len(r.PartitionKey), len(r.ExplicitHashKey), len(r.Data))
		if alone > maxSize {
			tooBig(i, fmt.Errorf("record of %d bytes with a %d-byte partition key makes a %d-byte aggregate, over the %d-byte limit", len(r.Data), len(r.PartitionKey), alone, maxSize))
			continue
		}
		if !a.fits(&r) {
			flush()
		}
		a.add(r)
	}
	flush()
}
