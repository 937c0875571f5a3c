package lambda

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

type produceResult struct {
	StatusCode int `json:"statusCode"`
	Received   int `json:"received"`
	Sent       int `json:"sent"`
	Failed     []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"failed"`
	Error string `json:"error"`
}

// Records from a direct invocation, API Gateway (REST and HTTP API, JSON
// array and JSON lines) and SQS all land in the stream, KPL aggregated,
// with their partition keys; bad payloads get a 400 saying what is wrong.
func TestProducer(t *testing.T) {
	kin := harness.Kinesis(t)
	stream := kin.NewStream(t, 1)
	fn := function(t, kin, "producer", "SHARDWORK_STREAM="+stream, "SHARDWORK_PROCESSOR=kpl-json", "SHARDWORK_PARTITION_KEY_FIELD=id")

	var res produceResult
	invoke(t, fn, map[string]any{"records": []any{map[string]any{"id": "d1", "n": 1}, map[string]any{"id": "d2", "n": 2}}}, &res)
	if res.StatusCode != 200 || res.Received != 2 || res.Sent != 2 {
		t.Fatalf("direct: %+v", res)
	}

	var api events.APIGatewayProxyResponse
	invoke(t, fn, events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/records",
		Body: "{\"id\":\"a1\",\"n\":3}\n{\"id\":\"a2\",\"n\":4}\n"}, &api)
	if api.StatusCode != http.StatusOK || !strings.Contains(api.Body, `"sent":2`) {
		t.Fatalf("API Gateway JSON lines: %+v", api)
	}
	api = events.APIGatewayProxyResponse{}
	invoke(t, fn, events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /records", RawPath: "/records",
		Body: `[{"id":"h1","n":5}]`}, &api)
	if api.StatusCode != http.StatusOK || !strings.Contains(api.Body, `"sent":1`) {
		t.Fatalf("HTTP API JSON array: %+v", api)
	}

	var sqs events.SQSEventResponse
	invoke(t, fn, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", EventSource: "aws:sqs", Body: `{"id":"s1","n":6}`},
		{MessageId: "m2", EventSource: "aws:sqs", Body: `{broken`},
		{MessageId: "m3", EventSource: "aws:sqs", Body: `{"id":"s3","n":7}`},
	}}, &sqs)
	if len(sqs.BatchItemFailures) != 1 || sqs.BatchItemFailures[0].ItemIdentifier != "m2" {
		t.Fatalf("SQS: failures %+v, want only m2", sqs.BatchItemFailures)
	}

	// Bad payloads: nothing is produced, and the answer says why.
	res = produceResult{}
	invoke(t, fn, map[string]any{"hello": "world"}, &res)
	if res.StatusCode != 400 || !strings.Contains(res.Error, "unknown payload") {
		t.Errorf("unknown payload: %+v", res)
	}
	res = produceResult{}
	invoke(t, fn, map[string]any{"records": "not a list"}, &res)
	if res.StatusCode != 400 || !strings.Contains(res.Error, `"records" must be an array`) {
		t.Errorf("records not a list: %+v", res)
	}
	api = events.APIGatewayProxyResponse{}
	invoke(t, fn, events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/records", Body: "{\"id\":\"x\"}\nnot json\n"}, &api)
	if api.StatusCode != http.StatusBadRequest || !strings.Contains(api.Body, "body line 2: not valid JSON") {
		t.Errorf("bad API body: %+v", api)
	}

	recs := userRecords(t, records.KPLAggregator{}, readAll(t, kin, stream))
	items, err := records.JSONProcessor().Serializer.Deserialize(context.Background(), dataOf(recs))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, it := range items {
		m := it.(map[string]any)
		id := m["id"].(string)
		if recs[i].PartitionKey != id {
			t.Errorf("record %s has partition key %q", id, recs[i].PartitionKey)
		}
		got = append(got, id)
	}
	if want := []string{"d1", "d2", "a1", "a2", "h1", "s1", "s3"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}

	// Cold and warm durations, from the emulator's REPORT lines.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reps, err := fn.WaitReports(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !reps[0].Cold || reps[0].InitDuration <= 0 {
		t.Errorf("first invocation %+v: want a cold start with an init duration", reps[0])
	}
	for _, r := range reps[1:] {
		if r.Cold || r.Duration <= 0 {
			t.Errorf("invocation %+v: want warm, with a duration", r)
		}
	}
	t.Logf("producer: init %v, first invocation %v, warm invocations %v .. %v", reps[0].InitDuration, reps[0].Duration,
		slices.MinFunc(reps[1:], byDuration).Duration, slices.MaxFunc(reps[1:], byDuration).Duration)
}

func byDuration(a, b harness.Report) int { return int(a.Duration - b.Duration) }

func dataOf(recs []records.Record) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Data
	}
	return out
}
