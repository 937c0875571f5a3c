package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
)

// itemMode says how a payload's values become items for the serializer.
type itemMode uint8

const (
	itemsJSON  itemMode = iota // the JSON text itself (json.RawMessage): JSON serializers and plugins
	itemsText                  // strings: string serializers; a JSON string gives its value, a line its text
	itemsValue                 // decoded JSON values (map, slice, float64, ...): msgpack
)

func modeFor(processor string, serializerPlugin bool) itemMode {
	if serializerPlugin {
		return itemsJSON
	}
	switch processor {
	case records.NameString, records.NameKPLString:
		return itemsText
	case records.NameMsgpack:
		return itemsValue
	}
	return itemsJSON
}

// producer puts the records of an invocation payload into the stream and
// waits until each is delivered or has failed.
type producer struct {
	ser     records.Serializer
	out     sink
	mode    itemMode
	pkField string
	log     *slog.Logger
}

// badPayload is a payload the producer cannot read; its message says why.
type badPayload struct{ msg string }

func (e *badPayload) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badPayload{fmt.Sprintf(format, args...)} }

// directRequest is the payload of a direct invocation.
type directRequest struct {
	Records      []json.RawMessage `json:"records"`
	PartitionKey string            `json:"partitionKey,omitempty"`
}

// ItemFailure names one record that was not delivered.
type ItemFailure struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ProduceResult is the producer's answer to a direct invocation and the
// body of its API Gateway responses.
type ProduceResult struct {
	StatusCode int           `json:"statusCode"`
	Received   int           `json:"received"`
	Sent       int           `json:"sent"`
	Failed     []ItemFailure `json:"failed,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// Handle serves the three payload shapes: a direct {"records": [...]}, an
// API Gateway proxy event (REST or HTTP API) whose body is a JSON array or
// JSON lines, and an SQS event (one record per message).
func (p *producer) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return p.direct(ctx, nil, bad("payload is not a JSON object: %v", err)), nil
	}
	switch {
	case top["Records"] != nil:
		return p.sqs(ctx, payload)
	case top["records"] != nil:
		var req directRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return p.direct(ctx, nil, bad(`"records" must be an array of items: %v`, err)), nil
		}
		return p.direct(ctx, &req, nil), nil
	case top["httpMethod"] != nil || top["routeKey"] != nil || top["requestContext"] != nil:
		return p.api(ctx, payload), nil
	}
	return p.direct(ctx, nil, bad(`unknown payload: want {"records": [...]}, an API Gateway proxy event or an SQS event`)), nil
}

func (p *producer) direct(ctx context.Context, req *directRequest, perr error) ProduceResult {
	if perr != nil {
		return ProduceResult{StatusCode: http.StatusBadRequest, Error: perr.Error()}
	}
	items := make([]any, len(req.Records))
	for i, raw := range req.Records {
		it, err := p.item(raw, true)
		if err != nil {
			return ProduceResult{StatusCode: http.StatusBadRequest, Error: fmt.Sprintf("records[%d]: %v", i, err)}
		}
		items[i] = it
	}
	return p.produce(ctx, items, req.PartitionKey)
}

func (p *producer) api(ctx context.Context, payload json.RawMessage) events.APIGatewayProxyResponse {
	var req events.APIGatewayProxyRequest // the REST and HTTP API shapes share body and isBase64Encoded
	res := func() ProduceResult {
		if err := json.Unmarshal(payload, &req); err != nil {
			return ProduceResult{StatusCode: http.StatusBadRequest, Error: "API Gateway event: " + err.Error()}
		}
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(req.Body)
			if err != nil {
				return ProduceResult{StatusCode: http.StatusBadRequest, Error: "body is marked base64 but does not decode: " + err.Error()}
			}
			body = b
		}
		items, err := p.bodyItems(body)
		if err != nil {
			return ProduceResult{StatusCode: http.StatusBadRequest, Error: err.Error()}
		}
		return p.produce(ctx, items, "")
	}()
	b, _ := json.Marshal(res)
	return events.APIGatewayProxyResponse{
		StatusCode: res.StatusCode,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
}

// bodyItems reads an HTTP body: a JSON array of items, or JSON lines (one
// item a line; with a string processor, each line's text).
func (p *producer) bodyItems(body []byte) ([]any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, bad("empty body: send a JSON array of records or JSON lines")
	}
	if trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, bad("body is not a valid JSON array: %v", err)
		}
		items := make([]any, len(raws))
		for i, raw := range raws {
			it, err := p.item(raw, true)
			if err != nil {
				return nil, bad("body[%d]: %v", i, err)
			}
			items[i] = it
		}
		return items, nil
	}
	var items []any
	for n, line := range bytes.Split(body, []byte{'\n'}) {
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		it, err := p.item(line, false)
		if err != nil {
			return nil, bad("body line %d: %v", n+1, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// item turns one value into an item. isJSON says the bytes are a JSON value
// (an array element); otherwise they are a line or a message body, read as
// JSON except by string processors.
func (p *producer) item(b []byte, isJSON bool) (any, error) {
	switch p.mode {
	case itemsText:
		if isJSON && len(b) > 0 && b[0] == '"' {
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, err
			}
			return s, nil
		}
		return string(b), nil
	case itemsValue:
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		return v, nil
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	return json.RawMessage(bytes.Clone(b)), nil
}

func (p *producer) sqs(ctx context.Context, payload json.RawMessage) (any, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ProduceResult{StatusCode: http.StatusBadRequest, Error: "SQS event: " + err.Error()}, nil
	}
	var resp events.SQSEventResponse
	items := make([]any, 0, len(ev.Records))
	idx := make([]int, 0, len(ev.Records))
	for i, m := range ev.Records {
		if m.EventSource != "" && m.EventSource != "aws:sqs" {
			return ProduceResult{StatusCode: http.StatusBadRequest, Error: fmt.Sprintf("Records[%d]: event source %q is not aws:sqs", i, m.EventSource)}, nil
		}
		it, err := p.item([]byte(m.Body), false)
		if err != nil {
			p.log.LogAttrs(ctx, slog.LevelWarn, "sqs message is not a record", slog.String("message_id", m.MessageId), slog.String("error", err.Error()))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		items = append(items, it)
		idx = append(idx, i)
	}
	res := p.produce(ctx, items, "")
	for _, f := range res.Failed {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[idx[f.Index]].MessageId})
	}
	return resp, nil
}

// produce serializes items and delivers them. Partition keys come from
// pk, else the item's SHARDWORK_PARTITION_KEY_FIELD, else a random key.
func (p *producer) produce(ctx context.Context, items []any, pk string) ProduceResult {
	res := ProduceResult{StatusCode: http.StatusOK, Received: len(items)}
	if len(items) == 0 {
		return res
	}
	data, err := p.ser.Serialize(ctx, items)
	ie, batchErr := records.SplitErrors(err)
	if batchErr != nil {
		// Nothing was sent: every item is named, so that an SQS batch
		// is retried whole rather than deleted.
		res.StatusCode = http.StatusInternalServerError
		res.Error = "serialize: " + batchErr.Error()
		for i := range items {
			res.Failed = append(res.Failed, ItemFailure{Index: i, Error: res.Error})
		}
		return res
	}
	// failed holds each undelivered item's message; delivery counts the
	// failures that were not the item's own fault (the others are 400s).
	failed := make(map[int]string, len(ie))
	delivery := 0
	for _, e := range ie {
		failed[e.Index] = e.Err.Error()
	}
	recs := make([]records.UserRecord, 0, len(items))
	idx := make([]int, 0, len(items))
	for i, d := range data {
		if _, ok := failed[i]; ok {
			continue
		}
		recs = append(recs, records.UserRecord{PartitionKey: p.partitionKey(items[i], pk), Data: d})
		idx = append(idx, i)
	}
	err = p.out.Send(ctx, recs)
	ie, batchErr = records.SplitErrors(err)
	if batchErr != nil {
		for _, i := range idx {
			failed[i] = batchErr.Error()
		}
		delivery += len(idx)
	}
	for _, e := range ie {
		failed[idx[e.Index]] = e.Err.Error()
		if !errors.Is(e.Err, records.ErrTooLarge) && !errors.Is(e.Err, batch.ErrInvalidRecord) {
			delivery++
		}
	}
	for i := range items {
		if msg, ok := failed[i]; ok {
			res.Failed = append(res.Failed, ItemFailure{Index: i, Error: msg})
		}
	}
	res.Sent = len(items) - len(res.Failed)
	if len(res.Failed) > 0 {
		res.Error = fmt.Sprintf("%d of %d records were not delivered", len(res.Failed), len(items))
		res.StatusCode = http.StatusBadRequest
		if delivery > 0 {
			res.StatusCode = http.StatusBadGateway
		}
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "produced", slog.Int("received", res.Received), slog.Int("sent", res.Sent), slog.Int("failed", len(res.Failed)))
	return res
}

func (p *producer) partitionKey(item any, pk string) string {
	if pk != "" {
		return pk
	}
	if p.pkField != "" {
		if k := fieldKey(item, p.pkField); k != "" {
			return k
		}
	}
	return randomKey()
}

// fieldKey returns a top-level string or number field of a JSON object item.
func fieldKey(item any, field string) string {
	var v any
	switch it := item.(type) {
	case json.RawMessage:
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) != nil {
			return ""
		}
		raw, ok := m[field]
		if !ok {
			return ""
		}
		if json.Unmarshal(raw, &v) != nil {
			return ""
		}
	case map[string]any:
		v = it[field]
	default:
		return ""
	}
	switch k := v.(type) {
	case string:
		if len(k) > records.MaxPartitionKeyLen {
			return ""
		}
		return k
	case float64:
		return strconv.FormatFloat(k, 'f', -1, 64)
	}
	return ""
}
