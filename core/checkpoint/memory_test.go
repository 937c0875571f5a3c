package checkpoint_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/checkpointtest"
)

func memoryFactory(t *testing.T, cfg checkpointtest.Config) []checkpoint.Store {
	b, err := checkpoint.NewMemoryBackend(
		checkpoint.WithSessionTimeout(cfg.SessionTimeout),
		checkpoint.WithHeartbeatFrequency(cfg.HeartbeatFrequency))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]checkpoint.Store, cfg.Workers)
	for i := range out {
		s, err := b.Store("app", "stream")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// The memory store runs the suite on fake time: its default clock is
// time.Now, which synctest controls, and each case runs in a bubble.
func TestMemoryConformance(t *testing.T) {
	checkpointtest.Run(t, memoryFactory,
		checkpointtest.WithTiming(60*time.Second, 15*time.Second),
		checkpointtest.WithWrap(synctest.Test),
		checkpointtest.WithConcurrency(32, 8))
}

// WithClock drives expiry from a caller's clock.
func TestMemoryWithClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	b, err := checkpoint.NewMemoryBackend(checkpoint.WithClock(clock), checkpoint.WithSessionTimeout(10*time.Second),
		checkpoint.WithHeartbeatFrequency(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := b.Store("app", "s", checkpoint.WithWorkerID("a"))
	c, _ := b.Store("app", "s", checkpoint.WithWorkerID("c"))
	la, err := a.Take(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10*time.Second - time.Nanosecond)
	if _, err := c.Take(t.Context(), "x"); !errors.Is(err, checkpoint.ErrLeaseHeld) {
		t.Fatalf("take 1ns before expiry: %v", err)
	}
	now = now.Add(time.Nanosecond)
	lc, err := c.Take(t.Context(), "x")
	if err != nil || lc.Counter != la.Counter+1 {
		t.Fatalf("take at expiry: %+v %v", lc, err)
	}
	infos, _ := a.Leases(t.Context())
	if len(infos) != 1 || !infos[0].Expires.Equal(now.Add(10*time.Second)) {
		t.Fatalf("leases: %+v", infos)
	}
	// Stores of one backend on another stream see nothing of "s".
	o, _ := b.Store("app", "other")
	if infos, _ := o.Leases(t.Context()); len(infos) != 0 {
		t.Fatalf("other stream sees %+v", infos)
	}
}

func TestMemoryOptions(t *testing.T) {
	cases := []struct {
		name string
		err  error
		make func() error
	}{
		{"defaults", nil, func() error {
			m, err := checkpoint.NewMemory("app", "s")
			if err == nil && (m.SessionTimeout() != 60*time.Second || m.HeartbeatFrequency() != 15*time.Second || m.WorkerID() == "") {
				return errors.New("wrong defaults")
			}
			return err
		}},
		{"zero session", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "s", checkpoint.WithSessionTimeout(0))
			return err
		}},
		{"negative heartbeat", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "s", checkpoint.WithHeartbeatFrequency(-time.Second))
			return err
		}},
		{"heartbeat not below session", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "s", checkpoint.WithSessionTimeout(time.Second), checkpoint.WithHeartbeatFrequency(time.Second))
			return err
		}},
		{"empty worker id", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "s", checkpoint.WithWorkerID(""))
			return err
		}},
		{"nil clock", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "s", checkpoint.WithClock(nil))
			return err
		}},
		{"worker id on a backend", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemoryBackend(checkpoint.WithWorkerID("w"))
			return err
		}},
		{"clock on a store", checkpoint.ErrInvalidOption, func() error {
			b, _ := checkpoint.NewMemoryBackend()
			_, err := b.Store("app", "s", checkpoint.WithClock(time.Now))
			return err
		}},
		{"empty stream", checkpoint.ErrInvalidOption, func() error {
			_, err := checkpoint.NewMemory("app", "")
			return err
		}},
		{"worker id kept", nil, func() error {
			m, err := checkpoint.NewMemory("app", "s", checkpoint.WithWorkerID("w-1"))
			if err == nil && m.WorkerID() != "w-1" {
				return errors.New("worker id not applied")
			}
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.make()
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
		})
	}
}
