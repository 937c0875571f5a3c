package redisstore_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/tests/harness"
)

func newBenchStore(b *testing.B) (*redisstore.Store, *roundTrips) {
	c := client(b)
	rt := &roundTrips{}
	c.AddHook(rt)
	s, err := redisstore.New(c, harness.UniqueName(b), "stream")
	if err != nil {
		b.Fatal(err)
	}
	cleanup(b, c, s)
	return s, rt
}

func reportOps(b *testing.B, rt *roundTrips, before int64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(rt.n.Load()-before)/float64(b.N), "roundtrips/op")
}

// BenchmarkLeaseOps measures single lease operations, one worker, one
// goroutine: each is one Lua script call.
func BenchmarkLeaseOps(b *testing.B) {
	b.Run("take", func(b *testing.B) {
		s, rt := newBenchStore(b)
		if _, err := s.Take(b.Context(), "s"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		before := rt.n.Load()
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Take(b.Context(), "s"); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, rt, before)
	})
	b.Run("renew", func(b *testing.B) {
		s, rt := newBenchStore(b)
		l, err := s.Take(b.Context(), "s")
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Renew(b.Context(), l)
		b.ReportAllocs()
		before := rt.n.Load()
		b.ResetTimer()
		for b.Loop() {
			if err := s.Renew(b.Context(), l); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, rt, before)
	})
	b.Run("checkpoint", func(b *testing.B) {
		s, rt := newBenchStore(b)
		l, err := s.Take(b.Context(), "s")
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Checkpoint(b.Context(), l, checkpoint.Checkpoint{SequenceNumber: "1"})
		b.ReportAllocs()
		before := rt.n.Load()
		b.ResetTimer()
		seq := int64(1_000_000_000_000)
		for b.Loop() {
			seq++
			if err := s.Checkpoint(b.Context(), l, checkpoint.Checkpoint{SequenceNumber: strconv.FormatInt(seq, 10), Complete: true}); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, rt, before)
	})
	b.Run("checkpoint-parallel", func(b *testing.B) {
		s, rt := newBenchStore(b)
		l, err := s.Take(b.Context(), "s")
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Checkpoint(b.Context(), l, checkpoint.Checkpoint{SequenceNumber: "1"})
		b.ReportAllocs()
		before := rt.n.Load()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			seq := int64(1_000_000_000_000)
			for pb.Next() {
				seq++
				if err := s.Checkpoint(b.Context(), l, checkpoint.Checkpoint{SequenceNumber: strconv.FormatInt(seq, 10), Complete: true}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportOps(b, rt, before)
	})
}

// BenchmarkHeartbeat measures one worker's heartbeat with all its leases:
// HeartbeatAll (one script call whatever the shard count) against a
// Heartbeat plus one Renew per lease.
func BenchmarkHeartbeat(b *testing.B) {
	for _, shards := range []int{1, 16, 64, 100} {
		setup := func(b *testing.B) (*redisstore.Store, *roundTrips, []checkpoint.Lease) {
			s, rt := newBenchStore(b)
			leases := make([]checkpoint.Lease, shards)
			for i := range leases {
				l, err := s.Take(b.Context(), fmt.Sprintf("shardId-%012d", i))
				if err != nil {
					b.Fatal(err)
				}
				leases[i] = l
			}
			if _, _, err := s.HeartbeatAll(b.Context(), leases); err != nil {
				b.Fatal(err)
			}
			return s, rt, leases
		}
		b.Run(fmt.Sprintf("all/shards=%d", shards), func(b *testing.B) {
			s, rt, leases := setup(b)
			b.ReportAllocs()
			before := rt.n.Load()
			b.ResetTimer()
			for b.Loop() {
				_, errs, err := s.HeartbeatAll(b.Context(), leases)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range errs {
					if e != nil {
						b.Fatal(e)
					}
				}
			}
			reportOps(b, rt, before)
		})
		b.Run(fmt.Sprintf("each/shards=%d", shards), func(b *testing.B) {
			s, rt, leases := setup(b)
			b.ReportAllocs()
			before := rt.n.Load()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Heartbeat(b.Context()); err != nil {
					b.Fatal(err)
				}
				for _, l := range leases {
					if err := s.Renew(b.Context(), l); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportOps(b, rt, before)
		})
	}
}
