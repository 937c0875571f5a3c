package tests

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

// cutProxy forwards TCP connections to a target until cut: then it drops
// every open connection and refuses new ones until restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// Redis unreachable for longer than the session timeout while records
// keep coming: nothing is skipped, errors are reported, and heartbeats and
// checkpoints resume when Redis is back.
func TestConsumerSurvivesRedisOutage(t *testing.T) {
	env := harness.Kinesis(t)
	srv := harness.Redis(t)
	stream := env.NewStream(t, 2)
	proxy := startCutProxy(t, srv.Addr)
	rc := redis.NewClient(&redis.Options{Addr: proxy.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rc.Close() })
	store := redisStore(t, rc, harness.UniqueName(t), stream, "w")

	entries, items := jsonEntries(t, "o", 3000, 50)
	putEntries(t, env, stream, entries[:1000])
	var errs errorLog
	c := newConsumer(t, env, stream, shards.Checkpointer(store), shards.ErrorCallback(errs.add),
		shards.LeaseInterval(testHeartbeat))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type delivery struct{ id, shard, seq string }
	ids := make(chan delivery, 1024)
	done := make(chan error, 1)
	go func() {
		for rec, err := range c.Records(ctx) {
			if err != nil {
				done <- err
				return
			}
			select {
			case ids <- delivery{decodeItem(t, rec).ID, rec.ShardID, rec.SequenceNumber}:
			case <-ctx.Done():
				done <- nil
				return
			}
		}
		done <- nil
	}()
	seen := map[string]int{}
	last := map[string]string{} // highest sequence number delivered per shard
	note := func(d delivery) {
		seen[d.id]++
		if seqLess(last[d.shard], d.seq) {
			last[d.shard] = d.seq
		}
	}
	waitFor := func(n int) {
		t.Helper()
		for len(seen) < n {
			select {
			case d := <-ids:
				note(d)
			case err := <-done:
				t.Fatalf("consumer stopped after %d records: %v", len(seen), err)
			case <-ctx.Done():
				t.Fatalf("%d of %d records before the deadline", len(seen), n)
			}
		}
	}
	waitFor(1000)

	proxy.setCut(true)
	putEntries(t, env, stream, entries[1000:2000])
	// Keep consuming through the outage, for twice the session timeout.
	outage := time.NewTimer(2 * testSession)
	for waiting := true; waiting; {
		select {
		case d := <-ids:
			note(d)
		case <-outage.C:
			waiting = false
		case err := <-done:
			t.Fatalf("consumer stopped during the outage: %v", err)
		}
	}
	proxy.setCut(false)
	putEntries(t, env, stream, entries[2000:])
	waitFor(len(items))
	for _, it := range items {
		if seen[it.ID] == 0 {
			t.Fatalf("%s skipped", it.ID)
		}
	}
	outageErrs := 0
	for _, err := range errs.all() {
		var se *shards.ShardError
		if errors.As(err, &se) {
			outageErrs++
		}
	}
	if outageErrs == 0 {
		t.Fatal("no store error reported during the outage")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	infos, err := store.Leases(lctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]checkpoint.Checkpoint{}
	for _, li := range infos {
		got[li.Shard] = li.Checkpoint
		if li.Owner != "" {
			t.Errorf("shard %s still leased by %s", li.Shard, li.Owner)
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d errors reported during the outage; %d records delivered again after it; checkpoints %v", outageErrs, dups, got)
	if len(got) != 2 {
		t.Fatalf("checkpoints for %d shards, want 2", len(got))
	}
	// Checkpoints resumed: each shard's stored checkpoint (read back
	// through Redis) is at its last record.
	for shard, seq := range last {
		if cp := got[shard]; cp.SequenceNumber != seq || !cp.Complete {
			t.Fatalf("shard %s checkpoint %+v, want complete at %s", shard, cp, seq)
		}
	}
}
