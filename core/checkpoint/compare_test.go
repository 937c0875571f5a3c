package checkpoint_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/shardwork/shardwork/core/checkpoint"
)

func TestCompareSequence(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "0", -1},
		{"1", "", 1},
		{"9", "10", -1},
		{"100", "99", 1},
		{"200", "1000", -1},
		{"007", "7", 0},
		{"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", -1},
		{"49590338271490256608559692538361571095921575989136588898", "4959033827149025660855969253836157109592157598913658889", 1},
	}
	for _, c := range cases {
		if got := checkpoint.CompareSequence(c.a, c.b); got != c.want {
			t.Errorf("CompareSequence(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := checkpoint.CompareSequence(c.b, c.a); got != -c.want {
			t.Errorf("CompareSequence(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestValidSequence(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "0": true, "123": true, strings.Repeat("9", 128): true,
		strings.Repeat("9", 129): false, "12a": false, "-1": false, "+1": false, " 1": false, "1.5": false,
	} {
		if got := checkpoint.ValidSequence(s); got != want {
			t.Errorf("ValidSequence(%q) = %v", s, got)
		}
	}
}

func TestCompareCheckpoint(t *testing.T) {
	cp := func(seq string, sub int64, complete, finished bool) checkpoint.Checkpoint {
		return checkpoint.Checkpoint{SequenceNumber: seq, SubSequenceNumber: sub, Complete: complete, Finished: finished}
	}
	// Each is strictly ahead of the one before.
	order := []checkpoint.Checkpoint{
		{},
		cp("", 0, false, true),
		cp("5", 0, false, false),
		cp("5", 3, false, false),
		cp("5", 3, false, true),
		cp("5", 0, true, false),
		cp("5", 2, true, false),
		cp("10", 0, false, false),
	}
	for i := range order {
		for j := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := checkpoint.Compare(order[i], order[j]); got != want {
				t.Errorf("Compare(%+v, %+v) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	done := checkpoint.Checkpoint{SequenceNumber: "50", Complete: true, Finished: true}
	if got := checkpoint.Merge(done, checkpoint.Checkpoint{SequenceNumber: "40"}); got != done {
		t.Errorf("older write over a finished checkpoint: %+v", got)
	}
	if got := checkpoint.Merge(checkpoint.Checkpoint{SequenceNumber: "50"}, checkpoint.Checkpoint{Finished: true}); got != (checkpoint.Checkpoint{SequenceNumber: "50", Finished: true}) {
		t.Errorf("finishing write with no position: %+v", got)
	}
	if got := checkpoint.Merge(checkpoint.Checkpoint{SequenceNumber: "50", Finished: true}, checkpoint.Checkpoint{SequenceNumber: "60", SubSequenceNumber: 1}); got != (checkpoint.Checkpoint{SequenceNumber: "60", SubSequenceNumber: 1, Finished: true}) {
		t.Errorf("further write keeps finished: %+v", got)
	}
}

// FuzzCompareSequence checks CompareSequence against math/big for decimal
// strings.
func FuzzCompareSequence(f *testing.F) {
	f.Add("49590338271490256608559692538361571095921575989136588898", "200")
	f.Add("007", "7")
	f.Add("", "0")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !checkpoint.ValidSequence(a) || !checkpoint.ValidSequence(b) {
			return
		}
		got := checkpoint.CompareSequence(a, b)
		if got != -checkpoint.CompareSequence(b, a) {
			t.Fatalf("not antisymmetric: %q %q", a, b)
		}
		if a == "" || b == "" {
			return
		}
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		if want := x.Cmp(y); got != want {
			t.Fatalf("CompareSequence(%q, %q) = %d, big says %d", a, b, got, want)
		}
	})
}

func TestDefaultWorkerID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := checkpoint.DefaultWorkerID()
		if id == "" || seen[id] || strings.ContainsAny(id, " \t\n") {
			t.Fatalf("worker id %q empty, repeated or with spaces", id)
		}
		seen[id] = true
	}
}

func TestFairShare(t *testing.T) {
	for _, c := range []struct{ shards, live, want int }{
		{4, 3, 2}, {4, 4, 1}, {4, 1, 4}, {4, 0, 4}, {4, 8, 1}, {0, 3, 0}, {100, 3, 34}, {6, 3, 2},
	} {
		if got := checkpoint.FairShare(c.shards, c.live); got != c.want {
			t.Errorf("FairShare(%d, %d) = %d, want %d", c.shards, c.live, got, c.want)
		}
	}
}
