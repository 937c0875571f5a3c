package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/shardwork/shardwork/core/records"
)

// recordMeta is how a record is printed with --meta (or --raw): its
// metadata and either the decoded item (data) or the raw bytes (data_b64).
type recordMeta struct {
	ShardID           string          `json:"shard_id,omitempty"`
	SequenceNumber    string          `json:"sequence_number,omitempty"`
	SubSequenceNumber int64           `json:"sub_sequence_number"`
	PartitionKey      string          `json:"partition_key"`
	ExplicitHashKey   string          `json:"explicit_hash_key,omitempty"`
	ArrivalTime       *time.Time      `json:"arrival_time,omitempty"`
	Aggregated        bool            `json:"aggregated,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
	DataB64           *string         `json:"data_b64,omitempty"`
}

// lineWriter prints records as JSON lines through a buffer; Flush before
// exiting.
type lineWriter struct {
	w    *bufio.Writer
	meta bool
}

func newLineWriter(w io.Writer, meta bool) *lineWriter {
	return &lineWriter{w: bufio.NewWriterSize(w, 64<<10), meta: meta}
}

// itemJSON encodes one decoded item as JSON. Bytes (from a plugin or the
// raw path) that hold JSON are printed as that JSON, other bytes as a string
// when they are UTF-8 text.
func itemJSON(item any) ([]byte, error) {
	switch v := item.(type) {
	case json.RawMessage:
		if json.Valid(v) {
			return v, nil
		}
	case []byte:
		if json.Valid(v) {
			return v, nil
		}
		return json.Marshal(string(v))
	}
	return json.Marshal(item)
}

// write prints one record: the item alone, or the item with metadata.
func (lw *lineWriter) write(r records.Record, item any) error {
	data, err := itemJSON(item)
	if err != nil {
		return fmt.Errorf("record %s/%s#%d: encode as JSON: %w", r.ShardID, r.SequenceNumber, r.SubSequenceNumber, err)
	}
	if lw.meta {
		m := meta(r)
		m.Data = data
		if data, err = json.Marshal(m); err != nil {
			return err
		}
	}
	lw.w.Write(data)
	return lw.w.WriteByte('\n')
}

// writeRaw prints one record's bytes, base64-encoded, with its metadata.
func (lw *lineWriter) writeRaw(r records.Record) error {
	m := meta(r)
	s := base64.StdEncoding.EncodeToString(r.Data)
	m.DataB64 = &s
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	lw.w.Write(data)
	return lw.w.WriteByte('\n')
}

func (lw *lineWriter) Flush() error { return lw.w.Flush() }

func meta(r records.Record) recordMeta {
	m := recordMeta{
		ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
		PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Aggregated: r.Aggregated,
	}
	if !r.ArrivalTime.IsZero() {
		t := r.ArrivalTime.UTC()
		m.ArrivalTime = &t
	}
	return m
}
