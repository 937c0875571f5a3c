package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
)

func newTestProducer(proc records.Processor, s sink) *producer {
	return &producer{ser: proc.Serializer, out: s, mode: modeFor(proc.Name, false), pkField: "id", log: quiet}
}

func sentData(s *fakeSink) []string {
	var out []string
	for _, r := range s.sent {
		out = append(out, string(r.Data))
	}
	return out
}

func TestProducerDirect(t *testing.T) {
	s := &fakeSink{}
	p := newTestProducer(records.JSONProcessor(), s)
	out, err := p.Handle(context.Background(), json.RawMessage(`{"records":[{"id":"a","v":1},{"id":7,"v":[1,2]},"text",null]}`))
	if err != nil {
		t.Fatal(err)
	}
	res := out.(ProduceResult)
	if res.StatusCode != http.StatusOK || res.Received != 4 || res.Sent != 4 || len(res.Failed) != 0 {
		t.Errorf("result %+v", res)
	}
	if got, want := sentData(s), []string{`{"id": "a", "v": 1}`, `{"id": 7, "v": [1, 2]}`, `"text"`, `null`}; !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
	if s.sent[0].PartitionKey != "a" || s.sent[1].PartitionKey != "7" || s.sent[2].PartitionKey == "" {
		t.Errorf("partition keys %q %q %q", s.sent[0].PartitionKey, s.sent[1].PartitionKey, s.sent[2].PartitionKey)
	}

	s = &fakeSink{}
	p = newTestProducer(records.StringProcessor(), s)
	out, _ = p.Handle(context.Background(), json.RawMessage(`{"records":["x","y z"],"partitionKey":"same"}`))
	if res := out.(ProduceResult); res.Sent != 2 || !slices.Equal(sentData(s), []string{"x", "y z"}) || s.sent[1].PartitionKey != "same" {
		t.Errorf("result %+v, sent %q", res, sentData(s))
	}
}

func TestProducerBadPayloads(t *testing.T) {
	p := newTestProducer(records.JSONProcessor(), &fakeSink{})
	for _, c := range []struct{ payload, want string }{
		{`[1,2]`, "not a JSON object"},
		{`{"records":{"a":1}}`, `"records" must be an array`},
		{`{"hello":1}`, "unknown payload"},
	} {
		out, err := p.Handle(context.Background(), json.RawMessage(c.payload))
		if err != nil {
			t.Fatal(err)
		}
		res := out.(ProduceResult)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Error, c.want) {
			t.Errorf("%s: %+v, want 400 saying %q", c.payload, res, c.want)
		}
	}
}

func apiEvent(t *testing.T, body string, b64 bool) json.RawMessage {
	t.Helper()
	if b64 {
		body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	b, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/records", Body: body, IsBase64Encoded: b64})
	return b
}

func TestProducerAPIGateway(t *testing.T) {
	for _, c := range []struct {
		name, body string
		b64        bool
		status     int
		sent       []string
		errText    string
	}{
		{"array", `[{"id":"1"},{"id":"2"}]`, false, 200, []string{`{"id": "1"}`, `{"id": "2"}`}, ""},
		{"json lines, base64", "{\"id\":\"1\"}\r\n\n{\"id\":\"2\"}\n", true, 200, []string{`{"id": "1"}`, `{"id": "2"}`}, ""},
		{"bad line", "{\"id\":\"1\"}\n{oops\n", false, 400, nil, "body line 2: not valid JSON"},
		{"bad array", `[1,`, false, 400, nil, "not a valid JSON array"},
		{"empty", "  ", false, 400, nil, "empty body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &fakeSink{}
			p := newTestProducer(records.KPLJSONProcessor(), s)
			out, err := p.Handle(context.Background(), apiEvent(t, c.body, c.b64))
			if err != nil {
				t.Fatal(err)
			}
			resp := out.(events.APIGatewayProxyResponse)
			var res ProduceResult
			if err := json.Unmarshal([]byte(resp.Body), &res); err != nil {
				t.Fatalf("body %q: %v", resp.Body, err)
			}
			if resp.StatusCode != c.status || res.StatusCode != c.status || !strings.Contains(res.Error, c.errText) {
				t.Errorf("status %d, body %s; want %d saying %q", resp.StatusCode, resp.Body, c.status, c.errText)
			}
			if !slices.Equal(sentData(s), c.sent) {
				t.Errorf("sent %q, want %q", sentData(s), c.sent)
			}
		})
	}
}

func TestProducerSQS(t *testing.T) {
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", EventSource: "aws:sqs", Body: `{"id":"1"}`},
		{MessageId: "m2", EventSource: "aws:sqs", Body: `not json`},
		{MessageId: "m3", EventSource: "aws:sqs", Body: `{"id":"3"}`},
		{MessageId: "m4", EventSource: "aws:sqs", Body: `{"id":"4"}`},
	}}
	payload, _ := json.Marshal(ev)
	s := &fakeSink{fail: map[string]bool{`{"id": "3"}`: true}}
	p := newTestProducer(records.JSONProcessor(), s)
	out, err := p.Handle(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.SQSEventResponse)
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"m2", "m3"}) {
		t.Errorf("failed messages %v, want [m2 m3]", ids)
	}
	if !slices.Equal(sentData(s), []string{`{"id": "1"}`, `{"id": "4"}`}) {
		t.Errorf("sent %q", sentData(s))
	}
}

func TestProducerDeliveryFailures(t *testing.T) {
	s := &fakeSink{fail: map[string]bool{`2`: true}}
	p := newTestProducer(records.JSONProcessor(), s)
	out, _ := p.Handle(context.Background(), json.RawMessage(`{"records":[1,2,3]}`))
	res := out.(ProduceResult)
	if res.StatusCode != http.StatusBadGateway || res.Sent != 2 || len(res.Failed) != 1 || res.Failed[0].Index != 1 {
		t.Errorf("result %+v", res)
	}
	s = &fakeSink{err: errors.New("stream gone")}
	p = newTestProducer(records.JSONProcessor(), s)
	out, _ = p.Handle(context.Background(), json.RawMessage(`{"records":[1,2]}`))
	res = out.(ProduceResult)
	if res.StatusCode != http.StatusBadGateway || res.Sent != 0 || len(res.Failed) != 2 || !strings.Contains(res.Failed[1].Error, "stream gone") {
		t.Errorf("result %+v", res)
	}
	// An item too large for a Kinesis record is the caller's fault.
	p = newTestProducer(records.StringProcessor(), newTestSink(t, &fakeKinesis{}, records.StringProcessor(), 2))
	big := strings.Repeat("x", records.MaxRecordSize)
	b, _ := json.Marshal(map[string]any{"records": []string{"ok", big}})
	out, _ = p.Handle(context.Background(), b)
	res = out.(ProduceResult)
	if res.StatusCode != http.StatusBadRequest || res.Sent != 1 || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Error, "limit") {
		t.Errorf("result %+v", res)
	}
}

// brokenSerializer fails every batch as a whole.
type brokenSerializer struct{ records.Serializer }

func (brokenSerializer) Serialize(context.Context, []any) ([][]byte, error) {
	return nil, errors.New("plugin crashed")
}

// A serializer that fails the whole batch leaves no SQS message deleted.
func TestProducerSQSBatchFailure(t *testing.T) {
	s := &fakeSink{}
	p := &producer{ser: brokenSerializer{}, out: s, mode: itemsJSON, log: quiet}
	payload, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", EventSource: "aws:sqs", Body: `1`}, {MessageId: "m2", EventSource: "aws:sqs", Body: `2`}}})
	out, err := p.Handle(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(events.SQSEventResponse).BatchItemFailures; len(got) != 2 || got[0].ItemIdentifier != "m1" || got[1].ItemIdentifier != "m2" {
		t.Errorf("failures %+v, want both messages", got)
	}
	res, _ := p.Handle(context.Background(), json.RawMessage(`{"records":[1]}`))
	if r := res.(ProduceResult); r.StatusCode != 500 || r.Sent != 0 || len(r.Failed) != 1 || !strings.Contains(r.Error, "plugin crashed") {
		t.Errorf("direct: %+v", r)
	}
}
