package host

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

// TestBreakerHalfOpen: after the cooldown one operation is let through; a
// success closes the breaker, a failure re-opens it at once.
func TestBreakerHalfOpen(t *testing.T) {
	path, err := wasmbuild.Go("plugins/host/testdata/rawbad")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := Load(ctx, path, WithConfig([]byte("mode=batcherr")), WithCircuitBreaker(2, time.Minute), WithoutIsolation())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	now := time.Unix(1000, 0)
	p.cfg.now = func() time.Time { return now }
	h, _ := p.Handler()
	batch := []records.Record{{Data: []byte("a"), PartitionKey: "k"}}
	for range 2 {
		if _, err := h.Handle(ctx, batch); !errors.Is(err, ErrPluginFailed) {
			t.Fatalf("want plugin failure, got %v", err)
		}
	}
	if _, err := h.Handle(ctx, batch); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("want open breaker, got %v", err)
	}
	now = now.Add(61 * time.Second) // half-open: one call goes through and fails
	if _, err := h.Handle(ctx, batch); !errors.Is(err, ErrPluginFailed) {
		t.Fatalf("half-open call: %v", err)
	}
	if _, err := h.Handle(ctx, batch); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after a failed half-open call: %v", err)
	}
	// A success closes it: the mode switch stands in for a recovered plugin.
	now = now.Add(61 * time.Second)
	p.breakerRecord(false, nil)
	if err := p.breakerAllow(); err != nil {
		t.Fatalf("closed breaker refused: %v", err)
	}
}
