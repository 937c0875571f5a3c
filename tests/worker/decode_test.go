package worker_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

type kplVectors struct {
	Cases []struct {
		Name        string      `json:"name"`
		UserRecords []kplRecord `json:"user_records"`
		Aggregated  []kplRecord `json:"aggregated"`
	} `json:"cases"`
}

type kplRecord struct {
	PartitionKey    string  `json:"partition_key"`
	ExplicitHashKey *string `json:"explicit_hash_key"`
	DataB64         string  `json:"data_b64"`
}

func repoFile(t testing.TB, rel string) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..", rel)
}

func loadKPLVectors(t testing.TB) kplVectors {
	data, err := os.ReadFile(repoFile(t, "testdata/kpl/reference_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v kplVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no KPL vectors")
	}
	return v
}

// decodedLine is one line of `decode --meta --raw`.
type decodedLine struct {
	PartitionKey      string `json:"partition_key"`
	ExplicitHashKey   string `json:"explicit_hash_key"`
	SubSequenceNumber int64  `json:"sub_sequence_number"`
	SequenceNumber    string `json:"sequence_number"`
	ShardID           string `json:"shard_id"`
	DataB64           string `json:"data_b64"`
	Data              any    `json:"data"`
}

func parseLines(t testing.TB, out string) []decodedLine {
	t.Helper()
	var lines []decodedLine
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var d decodedLine
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		lines = append(lines, d)
	}
	return lines
}

// TestDecodeKPLVectors decodes every reference KPL record, as a raw payload
// file and inside a Lambda Kinesis event, and compares what is printed with
// the reference user records: partition keys, explicit hash keys, data and
// order.
func TestDecodeKPLVectors(t *testing.T) {
	v := loadKPLVectors(t)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			// Raw payloads, one invocation per aggregated record.
			var got []decodedLine
			for i, a := range c.Aggregated {
				data, err := base64.StdEncoding.DecodeString(a.DataB64)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, fmt.Sprintf("agg%d.bin", i))
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				r := worker(t, nil, nil, "decode", "--processor", "kpl-string", "--raw", "--input", p,
					"--partition-key", a.PartitionKey)
				mustOK(t, r, "decode raw payload")
				got = append(got, parseLines(t, r.stdout)...)
			}
			checkUserRecords(t, "raw", got, c.UserRecords)

			// The same records in one Lambda event, through stdin.
			type kin struct {
				PartitionKey   string  `json:"partitionKey"`
				SequenceNumber string  `json:"sequenceNumber"`
				Data           string  `json:"data"`
				Arrival        float64 `json:"approximateArrivalTimestamp"`
			}
			type evRec struct {
				EventID string `json:"eventID"`
				Kinesis kin    `json:"kinesis"`
			}
			var ev struct {
				Records []evRec `json:"Records"`
			}
			for i, a := range c.Aggregated {
				seq := fmt.Sprintf("4959%020d", i)
				ev.Records = append(ev.Records, evRec{
					EventID: "shardId-000000000003:" + seq,
					Kinesis: kin{PartitionKey: a.PartitionKey, SequenceNumber: seq, Data: a.DataB64, Arrival: 1764120000.25},
				})
			}
			evJSON, _ := json.Marshal(ev)
			r := worker(t, nil, evJSON, "decode", "--processor", "kpl-string", "--raw", "--meta")
			mustOK(t, r, "decode lambda event")
			lines := parseLines(t, r.stdout)
			checkUserRecords(t, "lambda", lines, c.UserRecords)
			for _, l := range lines {
				if l.ShardID != "shardId-000000000003" || !strings.HasPrefix(l.SequenceNumber, "4959") {
					t.Fatalf("lambda metadata not carried: %+v", l)
				}
			}

			// Decoded as strings (when every payload is UTF-8 text).
			allText := true
			for _, u := range c.UserRecords {
				d, _ := base64.StdEncoding.DecodeString(u.DataB64)
				allText = allText && utf8.Valid(d)
			}
			if !allText {
				r := worker(t, nil, evJSON, "decode", "--processor", "kpl-string")
				if r.code != 1 || !strings.Contains(r.stderr, "could not be decoded") {
					t.Fatalf("decoding binary payloads as strings: exit %d, stderr %q", r.code, r.stderr)
				}
				return
			}
			r = worker(t, nil, evJSON, "decode", "--processor", "kpl-string")
			mustOK(t, r, "decode as strings")
			outLines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(outLines) != len(c.UserRecords) {
				t.Fatalf("%d lines, want %d", len(outLines), len(c.UserRecords))
			}
			for i, u := range c.UserRecords {
				d, _ := base64.StdEncoding.DecodeString(u.DataB64)
				var s string
				if err := json.Unmarshal([]byte(outLines[i]), &s); err != nil || s != string(d) {
					t.Fatalf("line %d = %s (%v), want the string %q", i, outLines[i], err, d)
				}
			}
		})
	}
}

func checkUserRecords(t *testing.T, how string, got []decodedLine, want []kplRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d user records, want %d", how, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		wantEHK := ""
		if w.ExplicitHashKey != nil {
			wantEHK = *w.ExplicitHashKey
		}
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != wantEHK || g.DataB64 != w.DataB64 {
			t.Fatalf("%s: user record %d = {pk %q ehk %q data %s}, want {pk %q ehk %q data %s}", how, i,
				g.PartitionKey, g.ExplicitHashKey, g.DataB64, w.PartitionKey, wantEHK, w.DataB64)
		}
	}
}

// TestDecodeJSONLines decodes a JSON lines payload into its items.
func TestDecodeJSONLines(t *testing.T) {
	payload := "{\"a\": 1}\n{\"b\": [true, null]}\n\"text\"\n"
	r := worker(t, nil, []byte(payload), "decode", "--processor", "jsonlines", "--format", "raw")
	mustOK(t, r, "decode jsonlines")
	want := "{\"a\":1}\n{\"b\":[true,null]}\n\"text\"\n"
	if r.stdout != want {
		t.Fatalf("decode printed %q, want %q", r.stdout, want)
	}
	r = worker(t, nil, []byte("{\"a\": 1}\nnot json\n"), "decode", "--processor", "jsonlines")
	if r.code != 1 || !strings.Contains(r.stderr, "could not be decoded") {
		t.Fatalf("malformed payload: exit %d, stderr %q", r.code, r.stderr)
	}
}
