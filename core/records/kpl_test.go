package records

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"
)

type kplVectors struct {
	Cases []struct {
		Name        string `json:"name"`
		MaxSize     int    `json:"max_size"`
		UserRecords []struct {
			PartitionKey    string  `json:"partition_key"`
			ExplicitHashKey *string `json:"explicit_hash_key"`
			DataB64         string  `json:"data_b64"`
		} `json:"user_records"`
		Aggregated []struct {
			PartitionKey    string  `json:"partition_key"`
			ExplicitHashKey *string `json:"explicit_hash_key"`
			DataB64         string  `json:"data_b64"`
		} `json:"aggregated"`
	} `json:"cases"`
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestKPLReferenceVectors checks KPL aggregation and deaggregation against
// records made by the reference aggregator.
func TestKPLReferenceVectors(t *testing.T) {
	var f kplVectors
	readTestdata(t, "kpl/reference_vectors.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("no KPL reference cases")
	}
	ctx := context.Background()
	arrival := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			users := make([]UserRecord, len(c.UserRecords))
			for i, u := range c.UserRecords {
				users[i] = UserRecord{PartitionKey: u.PartitionKey, ExplicitHashKey: deref(u.ExplicitHashKey), Data: b64(t, u.DataB64)}
			}
			// Deaggregate: exactly the user records, in order.
			var recs []Record
			for i, a := range c.Aggregated {
				recs = append(recs, Record{Data: b64(t, a.DataB64), PartitionKey: a.PartitionKey,
					ExplicitHashKey: deref(a.ExplicitHashKey), ShardID: "shardId-000000000001",
					SequenceNumber: string(rune('a' + i)), ArrivalTime: arrival})
			}
			got, err := KPLAggregator{}.Deaggregate(ctx, recs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(users) {
				t.Fatalf("deaggregated %d records, want %d", len(got), len(users))
			}
			k, sub := 0, int64(0)
			for i, g := range got {
				u := users[i]
				if g.PartitionKey != u.PartitionKey || g.ExplicitHashKey != u.ExplicitHashKey || !bytes.Equal(g.Data, u.Data) {
					t.Fatalf("record %d: got (%q, %q, %q), want (%q, %q, %q)", i, g.PartitionKey, g.ExplicitHashKey, g.Data, u.PartitionKey, u.ExplicitHashKey, u.Data)
				}
				if i > 0 && g.SequenceNumber != got[i-1].SequenceNumber {
					k++
					sub = 0
				}
				if g.SequenceNumber != recs[k].SequenceNumber || g.SubSequenceNumber != sub || !g.Aggregated ||
					g.ShardID != "shardId-000000000001" || !g.ArrivalTime.Equal(arrival) {
					t.Fatalf("record %d metadata: %+v", i, g)
				}
				sub++
			}
			// Aggregate: the same bytes, keys and counts.
			out, err := KPLAggregator{}.Aggregate(ctx, users, c.MaxSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(c.Aggregated) {
				t.Fatalf("aggregated into %d records, want %d", len(out), len(c.Aggregated))
			}
			total := 0
			for i, a := range out {
				want := c.Aggregated[i]
				if !bytes.Equal(a.Data, b64(t, want.DataB64)) {
					t.Fatalf("record %d: bytes differ (len %d, want %d)", i, len(a.Data), len(b64(t, want.DataB64)))
				}
				if a.PartitionKey != want.PartitionKey || a.ExplicitHashKey != deref(want.ExplicitHashKey) {
					t.Fatalf("record %d keys (%q, %q), want (%q, %q)", i, a.PartitionKey, a.ExplicitHashKey, want.PartitionKey, deref(want.ExplicitHashKey))
				}
				if n := len(a.Data) + len(a.PartitionKey); n > c.MaxSize {
					t.Fatalf("record %d: %d bytes over the limit %d", i, n, c.MaxSize)
				}
				total += a.Count
			}
			if total != len(users) {
				t.Fatalf("counts sum to %d, want %d", total, len(users))
			}
		})
	}
}
