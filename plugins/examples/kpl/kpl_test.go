package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type vectorRecord struct {
	PartitionKey    string  `json:"partition_key"`
	ExplicitHashKey *string `json:"explicit_hash_key"`
	DataB64         string  `json:"data_b64"`
}

type vectorCase struct {
	Name        string         `json:"name"`
	MaxSize     int            `json:"max_size"`
	UserRecords []vectorRecord `json:"user_records"`
	Aggregated  []vectorRecord `json:"aggregated"`
}

func (v vectorRecord) user(t testing.TB) UserRecord {
	d, err := base64.StdEncoding.DecodeString(v.DataB64)
	if err != nil {
		t.Fatal(err)
	}
	u := UserRecord{PartitionKey: v.PartitionKey, Data: d}
	if v.ExplicitHashKey != nil {
		u.ExplicitHashKey = *v.ExplicitHashKey
	}
	return u
}

func loadVectors(t testing.TB) []vectorCase {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "kpl", "reference_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []vectorCase }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no vectors")
	}
	return f.Cases
}

// TestReferenceVectorsNative checks the plugin's logic natively; the WASM
// build is checked against the same vectors in plugins/host.
func TestReferenceVectorsNative(t *testing.T) {
	for _, c := range loadVectors(t) {
		t.Run(c.Name, func(t *testing.T) {
			var in []UserRecord
			for _, u := range c.UserRecords {
				in = append(in, u.user(t))
			}
			var got []UserRecord
			aggregateAll(in, c.MaxSize, func(pk, ehk string, data []byte, count int) {
				got = append(got, UserRecord{pk, ehk, data})
				if len(data)+len(pk) > c.MaxSize {
					t.Errorf("aggregate of %d bytes + key over %d", len(data), c.MaxSize)
				}
			}, func(i int, err error) { t.Fatalf("record %d rejected: %v", i, err) })
			if len(got) != len(c.Aggregated) {
				t.Fatalf("%d aggregates, want %d", len(got), len(c.Aggregated))
			}
			var back []UserRecord
			for i, a := range c.Aggregated {
				w := a.user(t)
				if got[i].PartitionKey != w.PartitionKey || got[i].ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(got[i].Data, w.Data) {
					t.Fatalf("aggregate %d differs from the reference (len %d vs %d)", i, len(got[i].Data), len(w.Data))
				}
				if err := parse(w.Data, func(u UserRecord) { back = append(back, u) }); err != nil {
					t.Fatal(err)
				}
			}
			if len(back) != len(in) {
				t.Fatalf("deaggregated %d records, want %d", len(back), len(in))
			}
			for i := range in {
				if back[i].PartitionKey != in[i].PartitionKey || back[i].ExplicitHashKey != in[i].ExplicitHashKey || !bytes.Equal(back[i].Data, in[i].Data) {
					t.Fatalf("record %d: got %+v want %+v", i, back[i], in[i])
				}
			}
		})
	}
}

func TestSizeAloneMatchesEncoding(t *testing.T) {
	for _, r := range []UserRecord{{"a", "", nil}, {"key", "12345", make([]byte, 200)}, {string(make([]byte, 256)), "", make([]byte, 70000)}} {
		aggregateAll([]UserRecord{r}, 1<<20, func(pk, ehk string, data []byte, count int) {
			if got, want := sizeAlone(len(r.PartitionKey), len(r.ExplicitHashKey), len(r.Data)), len(data)+len(pk); got != want {
				t.Errorf("sizeAlone %d, encoded %d", got, want)
			}
		}, func(int, error) { t.Fatal("rejected") })
	}
}

func TestParseRejects(t *testing.T) {
	good := []byte{}
	aggregateAll([]UserRecord{{"a", "", []byte("123")}}, 1<<20, func(_, _ string, d []byte, _ int) { good = d }, nil)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if err := parse(bad, func(UserRecord) {}); err == nil {
		t.Fatal("bad MD5 accepted")
	}
	if err := parse([]byte("plain"), func(UserRecord) {}); err != ErrNotAggregate {
		t.Fatalf("plain data: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	aggregateAll([]UserRecord{{"a", "1", []byte("123")}, {"b", "", nil}}, 1<<20, func(_, _ string, d []byte, _ int) { f.Add(d) }, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []UserRecord
		if err := parse(data, func(u UserRecord) { got = append(got, u) }); err != nil {
			return
		}
		// Whatever parses re-aggregates and parses to the same records.
		var again []UserRecord
		aggregateAll(got, 1<<30, func(_, _ string, d []byte, _ int) {
			if err := parse(d, func(u UserRecord) { again = append(again, u) }); err != nil {
				t.Fatal(err)
			}
		}, func(int, error) {})
		if len(again) != len(got) {
			t.Fatalf("%d vs %d", len(again), len(got))
		}
	})
}

func BenchmarkAggregateNative(b *testing.B) {
	in := make([]UserRecord, 500)
	for i := range in {
		in[i] = UserRecord{PartitionKey: "pk-" + string(rune('a'+i%50)), Data: make([]byte, 1000)}
	}
	b.ReportAllocs()
	b.SetBytes(500 * 1000)
	for b.Loop() {
		aggregateAll(in, 1<<20, func(string, string, []byte, int) {}, func(int, error) {})
	}
}
