package redisstore_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/tests/harness"
)

// The checkpoint script orders positions exactly as checkpoint.Merge does:
// random writes (sequence numbers of several lengths, leading zeros,
// sub-sequences, Complete and Finished) leave Redis holding what Merge
// computes.
func TestCheckpointScriptMatchesMerge(t *testing.T) {
	c := client(t)
	s, err := redisstore.New(c, harness.UniqueName(t), "stream")
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, s)
	l, err := s.Take(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := func() string {
		switch rng.IntN(8) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("0", rng.IntN(3)) + strconv.Itoa(rng.IntN(1000))
		default:
			// 56-digit Kinesis-like numbers sharing a long prefix.
			return "4959033827149025660855969253836157109592157598913658" + strconv.Itoa(1000+rng.IntN(9000))
		}
	}
	var model checkpoint.Checkpoint
	for i := range 400 {
		w := checkpoint.Checkpoint{SequenceNumber: seq(), Finished: rng.IntN(20) == 0}
		if w.SequenceNumber != "" {
			w.SubSequenceNumber = int64(rng.IntN(4))
			w.Complete = rng.IntN(2) == 0
		}
		if err := s.Checkpoint(t.Context(), l, w); err != nil {
			t.Fatalf("write %d %+v: %v", i, w, err)
		}
		model = checkpoint.Merge(model, w)
		got, err := s.Get(t.Context(), "s")
		if err != nil {
			t.Fatal(err)
		}
		if got != model {
			t.Fatalf("write %d %+v: redis holds %+v, Merge gives %+v", i, w, got, model)
		}
	}
}
