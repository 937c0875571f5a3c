package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recordingHandler remembers what it saw and fails the records whose data
// is in fail.
type recordingHandler struct {
	seen []records.Record
	fail map[string]records.Status
	emit bool
	err  error
}

func (h *recordingHandler) Handle(_ context.Context, batch []records.Record) (records.HandlerOutput, error) {
	h.seen = append(h.seen, batch...)
	if h.err != nil {
		return records.HandlerOutput{}, h.err
	}
	out := records.HandlerOutput{Results: make([]records.Result, len(batch))}
	for i, r := range batch {
		if st, ok := h.fail[string(r.Data)]; ok {
			out.Results[i] = records.Result{Status: st, Message: "told to"}
		}
		if h.emit {
			out.Emit = append(out.Emit, records.UserRecord{PartitionKey: r.PartitionKey, Data: r.Data})
		}
	}
	return out, nil
}

// fakeSink records what was sent and fails the records whose data is in
// fail (or everything with err).
type fakeSink struct {
	sent []records.UserRecord
	fail map[string]bool
	err  error
}

func (s *fakeSink) Send(_ context.Context, recs []records.UserRecord) error {
	if s.err != nil {
		return s.err
	}
	var ie records.ItemErrors
	for i, r := range recs {
		if s.fail[string(r.Data)] {
			ie = append(ie, records.ItemError{Index: i, Err: errors.New("put failed")})
			continue
		}
		s.sent = append(s.sent, r)
	}
	if ie != nil {
		return ie
	}
	return nil
}

// kinesisEvent builds an event as the event source mapping does: each
// element is the data of one Kinesis record, sequence numbers 100, 101, ...
func kinesisEvent(data ...[]byte) events.KinesisEvent {
	var ev events.KinesisEvent
	for i, d := range data {
		seq := strconv.Itoa(100 + i)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			EventID:     "shardId-000000000003:" + seq,
			EventSource: "aws:kinesis",
			Kinesis: events.KinesisRecord{Data: d, PartitionKey: "pk" + seq, SequenceNumber: seq,
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: time.Unix(1700000000+int64(i), 0)}},
		})
	}
	return ev
}

// kpl aggregates the given JSON strings into one KPL record.
func kpl(t testing.TB, items ...string) []byte {
	t.Helper()
	in := make([]records.UserRecord, len(items))
	for i, it := range items {
		in[i] = records.UserRecord{PartitionKey: "u" + strconv.Itoa(i), Data: []byte(it)}
	}
	out, err := records.KPLAggregator{}.Aggregate(context.Background(), in, records.MaxRecordSize)
	if err != nil || len(out) != 1 {
		t.Fatalf("aggregate: %v (%d records)", err, len(out))
	}
	return out[0].Data
}

func failedSeqs(resp events.KinesisEventResponse) []string {
	var out []string
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func TestConsumerDeaggregatesAndSeesEveryRecord(t *testing.T) {
	h := &recordingHandler{}
	c := &consumer{proc: records.KPLJSONProcessor(), decode: true, handler: h, log: quiet}
	ev := kinesisEvent([]byte(`{"n":0}`), kpl(t, `{"n":1}`, `{"n":2}`, `{"n":3}`), []byte(`{"n":4}`))
	resp, err := c.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	type key struct {
		data, seq, shard, pk string
		sub                  int64
	}
	var got []key
	for _, r := range h.seen {
		got = append(got, key{string(r.Data), r.SequenceNumber, r.ShardID, r.PartitionKey, r.SubSequenceNumber})
	}
	want := []key{
		{`{"n":0}`, "100", "shardId-000000000003", "pk100", 0},
		{`{"n":1}`, "101", "shardId-000000000003", "u0", 0},
		{`{"n":2}`, "101", "shardId-000000000003", "u1", 1},
		{`{"n":3}`, "101", "shardId-000000000003", "u2", 2},
		{`{"n":4}`, "102", "shardId-000000000003", "pk102", 0},
	}
	if !slices.Equal(got, want) {
		t.Errorf("handler saw\n%v\nwant\n%v", got, want)
	}
	if !h.seen[4].ArrivalTime.Equal(time.Unix(1700000002, 0)) {
		t.Errorf("arrival time %v", h.seen[4].ArrivalTime)
	}
}

func TestConsumerFailures(t *testing.T) {
	good := kpl(t, `{"n":1}`, `{"n":2}`)
	corrupt := slices.Clone(kpl(t, `{"n":5}`, `{"n":6}`))
	corrupt[len(corrupt)-1] ^= 0xff // breaks the MD5 trailer
	notJSON := kpl(t, `{"n":7}`, `not json`)
	for _, c := range []struct {
		name     string
		data     [][]byte
		fail     map[string]records.Status
		skip     bool
		err      error
		want     []string // failed sequence numbers
		wantSeen []string
	}{
		{"retry inside an aggregate", [][]byte{[]byte(`{"n":0}`), good, []byte(`{"n":3}`)},
			map[string]records.Status{`{"n":2}`: records.StatusRetry, `{"n":3}`: records.StatusFail}, false, nil,
			[]string{"101"}, []string{`{"n":0}`, `{"n":1}`, `{"n":2}`, `{"n":3}`}},
		{"fail verdict", [][]byte{[]byte(`{"n":0}`), []byte(`{"n":3}`)},
			map[string]records.Status{`{"n":3}`: records.StatusFail}, false, nil,
			[]string{"101"}, []string{`{"n":0}`, `{"n":3}`}},
		{"skip verdict is finished", [][]byte{[]byte(`{"n":0}`)},
			map[string]records.Status{`{"n":0}`: records.StatusSkip}, false, nil,
			nil, []string{`{"n":0}`}},
		{"corrupt KPL stops the batch there", [][]byte{[]byte(`{"n":0}`), corrupt, good},
			nil, false, nil, []string{"101"}, []string{`{"n":0}`}},
		{"corrupt KPL skipped", [][]byte{[]byte(`{"n":0}`), corrupt, good},
			nil, true, nil, nil, []string{`{"n":0}`, `{"n":1}`, `{"n":2}`}},
		{"undecodable user record fails its Kinesis record", [][]byte{good, notJSON, []byte(`{"n":9}`)},
			nil, false, nil, []string{"101"}, []string{`{"n":1}`, `{"n":2}`}},
		{"handler error fails from the first record", [][]byte{good, []byte(`{"n":9}`)},
			nil, false, errors.New("boom"), []string{"100"}, []string{`{"n":1}`, `{"n":2}`, `{"n":9}`}},
		{"handler error after a bad record", [][]byte{good, corrupt, []byte(`{"n":9}`)},
			nil, true, errors.New("boom"), []string{"100"}, []string{`{"n":1}`, `{"n":2}`, `{"n":9}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &recordingHandler{fail: c.fail, err: c.err}
			con := &consumer{proc: records.KPLJSONProcessor(), decode: true, handler: h, skipBad: c.skip, log: quiet}
			resp, err := con.Handle(context.Background(), kinesisEvent(c.data...))
			if err != nil {
				t.Fatal(err)
			}
			if got := failedSeqs(resp); !slices.Equal(got, c.want) {
				t.Errorf("failures %v, want %v", got, c.want)
			}
			var seen []string
			for _, r := range h.seen {
				seen = append(seen, string(r.Data))
			}
			if !slices.Equal(seen, c.wantSeen) {
				t.Errorf("handler saw %v, want %v", seen, c.wantSeen)
			}
		})
	}
}

func TestConsumerOutputStream(t *testing.T) {
	data := [][]byte{[]byte(`"a"`), []byte(`"b"`), []byte(`"c"`), []byte(`"d"`)}
	t.Run("forward maps failed puts to their inputs", func(t *testing.T) {
		s := &fakeSink{fail: map[string]bool{`"c"`: true, `"d"`: true}}
		con := &consumer{proc: records.JSONProcessor(), handler: forwardHandler{}, out: s, log: quiet}
		resp, _ := con.Handle(context.Background(), kinesisEvent(data...))
		if got := failedSeqs(resp); !slices.Equal(got, []string{"102"}) {
			t.Errorf("failures %v, want [102]", got)
		}
		if len(s.sent) != 2 || string(s.sent[0].Data) != `"a"` || s.sent[0].PartitionKey != "pk100" {
			t.Errorf("sent %+v", s.sent)
		}
	})
	t.Run("plugin emits: any failed put fails the whole batch", func(t *testing.T) {
		s := &fakeSink{fail: map[string]bool{`"d"`: true}}
		con := &consumer{proc: records.JSONProcessor(), handler: &recordingHandler{emit: true}, out: s, log: quiet}
		resp, _ := con.Handle(context.Background(), kinesisEvent(data...))
		if got := failedSeqs(resp); !slices.Equal(got, []string{"100"}) {
			t.Errorf("failures %v, want [100]", got)
		}
	})
	t.Run("stream unreachable", func(t *testing.T) {
		s := &fakeSink{err: errors.New("no route")}
		con := &consumer{proc: records.JSONProcessor(), handler: forwardHandler{}, out: s, log: quiet}
		resp, _ := con.Handle(context.Background(), kinesisEvent(data...))
		if got := failedSeqs(resp); !slices.Equal(got, []string{"100"}) {
			t.Errorf("failures %v, want [100]", got)
		}
	})
	t.Run("emits without an output stream", func(t *testing.T) {
		con := &consumer{proc: records.JSONProcessor(), handler: forwardHandler{}, log: quiet}
		resp, _ := con.Handle(context.Background(), kinesisEvent(data...))
		if got := failedSeqs(resp); !slices.Equal(got, []string{"100"}) {
			t.Errorf("failures %v, want [100]", got)
		}
	})
	t.Run("all delivered", func(t *testing.T) {
		s := &fakeSink{}
		con := &consumer{proc: records.JSONProcessor(), handler: forwardHandler{}, out: s, log: quiet}
		resp, _ := con.Handle(context.Background(), kinesisEvent(data...))
		if len(resp.BatchItemFailures) != 0 || len(s.sent) != 4 {
			t.Errorf("failures %v, sent %d", failedSeqs(resp), len(s.sent))
		}
	})
}

// The event JSON as Lambda sends it decodes into what the consumer reads.
func TestConsumerEventJSON(t *testing.T) {
	payload := fmt.Sprintf(`{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"k1","sequenceNumber":"4954","data":%q,"approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:4954","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/r","awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/s"}]}`,
		base64.StdEncoding.EncodeToString([]byte(`{"x":1}`)))
	var ev events.KinesisEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		t.Fatal(err)
	}
	r := kinesisRecord(ev.Records[0])
	if string(r.Data) != `{"x":1}` || r.ShardID != "shardId-000000000006" || r.SequenceNumber != "4954" || r.PartitionKey != "k1" ||
		r.ArrivalTime.Sub(time.UnixMilli(1545084650987)).Abs() > time.Millisecond {
		t.Errorf("record %+v", r)
	}
}
