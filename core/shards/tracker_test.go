package shards

import (
	"fmt"
	"testing"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// FuzzTrackerCheckpoint finishes the records of a page (some aggregated,
// some failed at decode) in an arbitrary order and checks that the
// checkpoint is always the highest contiguous finished record.
func FuzzTrackerCheckpoint(f *testing.F) {
	f.Add([]byte{3, 1, 0, 2}, []byte{1, 3, 0})
	f.Add([]byte{0, 0, 0}, []byte{2, 1, 0})
	f.Fuzz(func(t *testing.T, groups, order []byte) {
		if len(groups) > 64 {
			groups = groups[:64]
		}
		tr := newTracker(checkpoint.Checkpoint{})
		var all []*entry // fetch order
		for i, g := range groups {
			seq := fmt.Sprintf("%04d", i+1)
			n := int(g % 5) // 0: a record that failed to decode
			if n == 0 {
				e := &entry{seq: seq, last: true, done: true}
				tr.add(e)
				all = append(all, e)
				continue
			}
			for sub := range n {
				e := &entry{seq: seq, sub: int64(sub), last: sub == n-1}
				tr.add(e)
				all = append(all, e)
			}
		}
		var open []*entry
		for _, e := range all {
			if !e.done {
				open = append(open, e)
			}
		}
		for k := 0; len(open) > 0; k++ {
			pick := 0
			if k < len(order) {
				pick = int(order[k]) % len(open)
			}
			e := open[pick]
			open = append(open[:pick], open[pick+1:]...)
			if !tr.deliver() {
				t.Fatal("deliver refused before stop")
			}
			tr.finish(e)
			// Expected: the last entry of the finished prefix.
			want := checkpoint.Checkpoint{}
			for _, x := range all {
				if !x.done {
					break
				}
				want = checkpoint.Checkpoint{SequenceNumber: x.seq, SubSequenceNumber: x.sub, Complete: x.last}
			}
			got, _ := tr.checkpoint(false)
			if got != want {
				t.Fatalf("after finishing %s/%d: checkpoint %+v, want %+v", e.seq, e.sub, got, want)
			}
		}
		if !tr.empty() {
			t.Fatalf("%d records pending after all finished", tr.pendingLen())
		}
	})
}
