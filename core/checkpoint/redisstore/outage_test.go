package redisstore_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/tests/harness"
)

// proxy forwards TCP connections to a target until cut; restore listens
// again on the same address. It owns its accept loop and copy goroutines
// and joins them in cut.
type proxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while this connection was being set up
				p.mu.Unlock()
				_, _ = c.Close(), up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
		}
	})
}

// cut stops listening and drops every connection, as a network partition
// or a Redis restart does.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// While Redis is unreachable every call is an error (never a zero
// checkpoint or a lost lease); once it is back the same store carries on
// with its lease and checkpoint intact.
func TestRedisOutageAndRecovery(t *testing.T) {
	srv := harness.Redis(t)
	direct := client(t)
	p := startProxy(t, srv.Addr)
	opt, _ := redis.ParseURL(srv.URL)
	opt.Addr = p.addr
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialerRetryTimeout = time.Millisecond
	opt.DialTimeout = 200 * time.Millisecond
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	s, err := redisstore.New(c, harness.UniqueName(t), "stream",
		redisstore.WithSessionTimeout(20*time.Second), redisstore.WithHeartbeatFrequency(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, direct, s)
	ctx := t.Context()
	l, err := s.Take(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	want := checkpoint.Checkpoint{SequenceNumber: "1000", Complete: true}
	if err := s.Checkpoint(ctx, l, want); err != nil {
		t.Fatal(err)
	}

	p.cut()
	if cp, err := s.Get(ctx, "s"); err == nil {
		t.Fatalf("get during the outage: %+v and no error", cp)
	}
	if err := s.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: "1001"}); err == nil || errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("checkpoint during the outage: %v", err)
	}
	if _, _, err := s.HeartbeatAll(ctx, []checkpoint.Lease{l}); err == nil {
		t.Fatal("heartbeat during the outage: no error")
	}

	p.restore(t)
	var live int
	var errs []error
	// The client redials on its next command; allow a few attempts for
	// connections the cut left in its pool.
	for attempt := 0; ; attempt++ {
		live, errs, err = s.HeartbeatAll(ctx, []checkpoint.Lease{l})
		if err == nil || attempt == 10 {
			break
		}
	}
	if err != nil || live != 1 || errs[0] != nil {
		t.Fatalf("heartbeat after recovery: live %d, %v, %v", live, errs, err)
	}
	if err := s.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: "1002", Complete: true}); err != nil {
		t.Fatalf("checkpoint after recovery: %v", err)
	}
	if cp, err := s.Get(ctx, "s"); err != nil || cp.SequenceNumber != "1002" {
		t.Fatalf("get after recovery: %+v, %v", cp, err)
	}
}
