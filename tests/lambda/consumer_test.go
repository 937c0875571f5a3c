package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/tests/harness"
)

type vectorRecord struct {
	PartitionKey    string  `json:"partition_key"`
	ExplicitHashKey *string `json:"explicit_hash_key"`
	DataB64         string  `json:"data_b64"`
}

func (v vectorRecord) user(t *testing.T) records.UserRecord {
	d, err := base64.StdEncoding.DecodeString(v.DataB64)
	if err != nil {
		t.Fatal(err)
	}
	return records.UserRecord{PartitionKey: v.PartitionKey, ExplicitHashKey: aws.ToString(v.ExplicitHashKey), Data: d}
}

func kplVectors(t *testing.T) (agg []records.Aggregated, user []records.UserRecord) {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "testdata", "kpl", "reference_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Name        string         `json:"name"`
			UserRecords []vectorRecord `json:"user_records"`
			Aggregated  []vectorRecord `json:"aggregated"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		for _, a := range c.Aggregated {
			u := a.user(t)
			agg = append(agg, records.Aggregated{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, Data: u.Data})
		}
		for _, u := range c.UserRecords {
			user = append(user, u.user(t))
		}
	}
	return agg, user
}

type userKey struct{ PK, EHK, Data string }

func keys(recs []records.Record) []userKey {
	out := make([]userKey, len(recs))
	for i, r := range recs {
		out[i] = userKey{r.PartitionKey, r.ExplicitHashKey, string(r.Data)}
	}
	return out
}

// Every user record of KPL aggregated records (made by the reference
// aggregator) and of plain records reaches the handler: the forward handler
// puts each into the output stream, which is read back and deaggregated.
func TestConsumerSeesEveryUserRecord(t *testing.T) {
	kin := harness.Kinesis(t)
	in, out := kin.NewStream(t, 1), kin.NewStream(t, 1)
	agg, user := kplVectors(t)
	plain := []records.Aggregated{{PartitionKey: "p1", Data: []byte("plain one")}, {PartitionKey: "p2", Data: []byte("plain two")}}
	put(t, kin, in, plain[0])
	put(t, kin, in, agg...)
	put(t, kin, in, plain[1])

	var want []userKey
	want = append(want, userKey{"p1", "", "plain one"})
	for _, u := range user {
		want = append(want, userKey{u.PartitionKey, u.ExplicitHashKey, string(u.Data)})
	}
	want = append(want, userKey{"p2", "", "plain two"})

	fn := function(t, kin, "consumer", "SHARDWORK_PROCESSOR=kpl-string", "SHARDWORK_BUILTIN_HANDLER=forward", "SHARDWORK_OUTPUT_STREAM="+out)
	read := readAll(t, kin, in)
	if len(read) != len(agg)+2 {
		t.Fatalf("read %d records back, put %d", len(read), len(agg)+2)
	}
	var resp batchResponse
	invoke(t, fn, event(in, read), &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.ids())
	}
	got := keys(userRecords(t, records.KPLAggregator{}, readAll(t, kin, out)))
	if !slices.Equal(got, want) {
		t.Errorf("the output stream holds %d user records, want %d", len(got), len(want))
		for i := range max(len(got), len(want)) {
			var g, w userKey
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("first difference at %d: got %+v, want %+v", i, g, w)
				break
			}
		}
	}
}

func corruptKPL(t *testing.T) []byte {
	a, err := records.KPLAggregator{}.Aggregate(context.Background(), []records.UserRecord{
		{PartitionKey: "c", Data: []byte(`{"n":"c1"}`)}, {PartitionKey: "c", Data: []byte(`{"n":"c2"}`)}}, records.MaxRecordSize)
	if err != nil {
		t.Fatal(err)
	}
	d := bytes.Clone(a[0].Data)
	d[len(d)-1] ^= 0xff // the MD5 trailer no longer matches
	return d
}

// A corrupt record is reported with its sequence number, the records
// before it are handled, the function does not crash, and the next
// invocation works.
func TestConsumerCorruptRecord(t *testing.T) {
	kin := harness.Kinesis(t)
	in, out := kin.NewStream(t, 1), kin.NewStream(t, 1)
	put(t, kin, in,
		records.Aggregated{PartitionKey: "a", Data: []byte(`{"n":"a"}`)},
		records.Aggregated{PartitionKey: "c", Data: corruptKPL(t)},
		records.Aggregated{PartitionKey: "b", Data: []byte(`{"n":"b"}`)})
	read := readAll(t, kin, in)
	if len(read) != 3 {
		t.Fatalf("read %d records", len(read))
	}
	outData := func() []string {
		var s []string
		for _, r := range readAll(t, kin, out) {
			for _, u := range userRecords(t, records.KPLAggregator{}, []types.Record{r}) {
				s = append(s, string(u.Data))
			}
		}
		return s
	}

	fn := function(t, kin, "consumer", "SHARDWORK_PROCESSOR=kpl-json", "SHARDWORK_BUILTIN_HANDLER=forward", "SHARDWORK_OUTPUT_STREAM="+out)
	var resp batchResponse
	invoke(t, fn, event(in, read), &resp)
	if got, want := resp.ids(), []string{aws.ToString(read[1].SequenceNumber)}; !slices.Equal(got, want) {
		t.Fatalf("failures %v, want the corrupt record %v", got, want)
	}
	if got := outData(); !slices.Equal(got, []string{`{"n":"a"}`}) {
		t.Errorf("forwarded %q, want only the record before the corrupt one", got)
	}
	// Lambda retries from the corrupt record and, once its retries are
	// spent, goes on after it: the function is still there and works.
	resp = batchResponse{}
	invoke(t, fn, event(in, read[2:]), &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v after the corrupt record", resp.ids())
	}
	if got := outData(); !slices.Equal(got, []string{`{"n":"a"}`, `{"n":"b"}`}) {
		t.Errorf("forwarded %q", got)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if reps, err := fn.WaitReports(wctx, 2); err != nil || len(reps) != 2 || !reps[0].Cold || reps[1].Cold {
		t.Errorf("reports %+v: want one cold start, then a warm invocation of the same runtime", reps)
	}

	// With SHARDWORK_ON_DECODE_ERROR=skip the corrupt record is counted and
	// passed over.
	out2 := kin.NewStream(t, 1)
	skip := function(t, kin, "consumer", "SHARDWORK_PROCESSOR=kpl-json", "SHARDWORK_BUILTIN_HANDLER=forward",
		"SHARDWORK_OUTPUT_STREAM="+out2, "SHARDWORK_ON_DECODE_ERROR=skip")
	resp = batchResponse{}
	invoke(t, skip, event(in, read), &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v in skip mode", resp.ids())
	}
	var got []string
	for _, u := range userRecords(t, records.KPLAggregator{}, readAll(t, kin, out2)) {
		got = append(got, string(u.Data))
	}
	if !slices.Equal(got, []string{`{"n":"a"}`, `{"n":"b"}`}) {
		t.Errorf("forwarded %q in skip mode", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := skip.WaitReports(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(skip.Output()), []byte(`"undecodable":1`)) || !bytes.Contains([]byte(skip.Output()), []byte(`"skipped":1`)) {
		t.Errorf("the batch log line does not count the skipped record")
	}
}

// When the output stream cannot take the emitted records, the inputs they
// came from are reported failed: nothing is acknowledged that was not
// delivered.
func TestConsumerOutputStreamFailure(t *testing.T) {
	kin := harness.Kinesis(t)
	in, out := kin.NewStream(t, 1), kin.NewStream(t, 1)
	put(t, kin, in,
		records.Aggregated{PartitionKey: "a", Data: []byte(`{"n":"a"}`)},
		records.Aggregated{PartitionKey: "b", Data: []byte(`{"n":"b"}`)})
	read := readAll(t, kin, in)
	fn := function(t, kin, "consumer", "SHARDWORK_PROCESSOR=kpl-json", "SHARDWORK_BUILTIN_HANDLER=forward",
		"SHARDWORK_OUTPUT_STREAM="+out, "SHARDWORK_PUT_ATTEMPTS=1")
	var resp batchResponse
	invoke(t, fn, event(in, read[:1]), &resp) // cold start: the producer finds the stream
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.ids())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kin.Client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(out)}); err != nil {
		t.Fatal(err)
	}
	resp = batchResponse{}
	invoke(t, fn, event(in, read), &resp)
	if got, want := resp.ids(), []string{aws.ToString(read[0].SequenceNumber)}; !slices.Equal(got, want) {
		t.Fatalf("failures %v, want the first record %v", got, want)
	}
	if _, err := fn.WaitReports(ctx, 2); err != nil { // the function's log lines come before its REPORT
		t.Fatal(err)
	}
	if !strings.Contains(fn.Output(), `"emit_failed":2`) {
		t.Errorf("the batch log line does not count the failed puts")
	}
}
