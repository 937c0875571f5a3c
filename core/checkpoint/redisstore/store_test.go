package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/checkpointtest"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
	"github.com/shardwork/shardwork/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// client returns a client for the harness's Redis, closed at cleanup.
func client(tb testing.TB) *redis.Client {
	tb.Helper()
	srv := harness.Redis(tb)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		tb.Fatalf("REDIS_URL %q: %v", srv.URL, err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// cleanup deletes every key of a store's (application, stream).
func cleanup(tb testing.TB, c redis.UniversalClient, s *redisstore.Store) {
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, s.KeyPrefix()+"*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("clean up %s: %v", s.KeyPrefix(), err)
		}
	})
}

func TestConformance(t *testing.T) {
	c := client(t)
	checkpointtest.Run(t, func(t *testing.T, cfg checkpointtest.Config) []checkpoint.Store {
		app := harness.UniqueName(t)
		out := make([]checkpoint.Store, cfg.Workers)
		for i := range out {
			s, err := redisstore.New(c, app, "stream",
				redisstore.WithSessionTimeout(cfg.SessionTimeout),
				redisstore.WithHeartbeatFrequency(cfg.HeartbeatFrequency))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				cleanup(t, c, s)
			}
			out[i] = s
		}
		return out
	}, checkpointtest.WithTiming(time.Second, 250*time.Millisecond))
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// An unreachable Redis is an error from every method, never "no
// checkpoint" or "lease held".
func TestUnreachableRedisIsAnError(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	s, err := redisstore.New(c, "app", "stream")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cp, err := s.Get(ctx, "shardId-000000000000")
	if err == nil {
		t.Fatalf("get from an unreachable redis returned %+v and no error", cp)
	}
	if !strings.Contains(err.Error(), "shardId-000000000000") {
		t.Errorf("error does not name the shard: %v", err)
	}
	_, err = s.Take(ctx, "s")
	if err == nil || errors.Is(err, checkpoint.ErrLeaseHeld) {
		t.Fatalf("take: %v", err)
	}
	l := checkpoint.Lease{Shard: "s", Owner: s.WorkerID(), Counter: 1}
	for name, err := range map[string]error{
		"renew":      s.Renew(ctx, l),
		"checkpoint": s.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: "1"}),
		"release":    s.Release(ctx, l),
	} {
		if err == nil || errors.Is(err, checkpoint.ErrLeaseLost) {
			t.Errorf("%s: %v, want a connection error", name, err)
		}
	}
	if _, err := s.Heartbeat(ctx); err == nil {
		t.Error("heartbeat: no error")
	}
	if _, err := s.Leases(ctx); err == nil {
		t.Error("leases: no error")
	}
	if errs, err := s.RenewAll(ctx, []checkpoint.Lease{l}); err == nil {
		t.Errorf("renew all: %v and no error", errs)
	}
}

// A stored value that is not a checkpoint is an error, not zero.
func TestCorruptCheckpointIsAnError(t *testing.T) {
	c := client(t)
	s, err := redisstore.New(c, harness.UniqueName(t), "stream")
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, s)
	if err := c.HSet(t.Context(), s.KeyPrefix()+":lease:s", "seq", "12x").Err(); err != nil {
		t.Fatal(err)
	}
	if cp, err := s.Get(t.Context(), "s"); err == nil {
		t.Fatalf("corrupt checkpoint read as %+v", cp)
	}
}

// Expiry is Redis's judgement: the lease hash holds Redis-time
// milliseconds, whatever the worker's clock says.
func TestExpiryUsesRedisTime(t *testing.T) {
	c := client(t)
	a, _ := redisstore.New(c, harness.UniqueName(t), "stream", redisstore.WithSessionTimeout(30*time.Second), redisstore.WithHeartbeatFrequency(time.Second))
	cleanup(t, c, a)
	before, err := c.Time(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Take(t.Context(), "s"); err != nil {
		t.Fatal(err)
	}
	exp, err := c.HGet(t.Context(), a.KeyPrefix()+":lease:s", "expires").Int64()
	if err != nil {
		t.Fatal(err)
	}
	d := time.UnixMilli(exp).Sub(before)
	if d < 30*time.Second-time.Millisecond || d > 31*time.Second {
		t.Fatalf("expires %v after redis time at take, want 30s", d)
	}
}

func TestKeysShareOneHashTag(t *testing.T) {
	c := client(t)
	s, err := redisstore.New(c, harness.UniqueName(t)+"/x}y", "stream", redisstore.WithKeyPrefix("test:"))
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, s)
	l, err := s.Take(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.HeartbeatAll(t.Context(), []checkpoint.Lease{l}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(t.Context(), s.KeyPrefix()+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("keys %v, want lease, shard set and worker registry", keys)
	}
	tag := func(k string) string {
		i := strings.IndexByte(k, '{')
		j := strings.IndexByte(k[i+1:], '}')
		return k[i+1 : i+1+j]
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "test:{") || tag(k) != tag(keys[0]) {
			t.Fatalf("key %q: prefix or hash tag differs from %q", k, keys[0])
		}
	}
}

func TestOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	bad := map[string]func() (*redisstore.Store, error){
		"nil client":        func() (*redisstore.Store, error) { return redisstore.New(nil, "a", "s") },
		"empty app":         func() (*redisstore.Store, error) { return redisstore.New(c, "", "s") },
		"empty stream":      func() (*redisstore.Store, error) { return redisstore.New(c, "a", "") },
		"prefix with brace": func() (*redisstore.Store, error) { return redisstore.New(c, "a", "s", redisstore.WithKeyPrefix("x{")) },
		"tiny session": func() (*redisstore.Store, error) {
			return redisstore.New(c, "a", "s", redisstore.WithSessionTimeout(time.Microsecond))
		},
		"zero heartbeat": func() (*redisstore.Store, error) {
			return redisstore.New(c, "a", "s", redisstore.WithHeartbeatFrequency(0))
		},
		"heartbeat above session": func() (*redisstore.Store, error) {
			return redisstore.New(c, "a", "s", redisstore.WithSessionTimeout(time.Second), redisstore.WithHeartbeatFrequency(2*time.Second))
		},
		"empty worker id": func() (*redisstore.Store, error) { return redisstore.New(c, "a", "s", redisstore.WithWorkerID("")) },
	}
	for name, f := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := f(); !errors.Is(err, checkpoint.ErrInvalidOption) {
				t.Fatalf("got %v, want ErrInvalidOption", err)
			}
		})
	}
	s, err := redisstore.New(c, "a", "s", redisstore.WithWorkerID("w"))
	if err != nil || s.WorkerID() != "w" || s.SessionTimeout() != 60*time.Second || s.HeartbeatFrequency() != 15*time.Second ||
		!strings.HasPrefix(s.KeyPrefix(), redisstore.DefaultKeyPrefix) {
		t.Fatalf("defaults: %v %v", s, err)
	}
}

// roundTrips counts commands and pipelines sent to Redis.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// One heartbeat of a worker with many leases is one round trip.
func TestHeartbeatAllIsOneRoundTrip(t *testing.T) {
	c := client(t)
	rt := &roundTrips{}
	c.AddHook(rt)
	s, _ := redisstore.New(c, harness.UniqueName(t), "stream")
	cleanup(t, c, s)
	var leases []checkpoint.Lease
	for i := range 100 {
		l, err := s.Take(t.Context(), "shard-"+strings.Repeat("0", 3)+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	if _, _, err := s.HeartbeatAll(t.Context(), leases); err != nil { // loads the script
		t.Fatal(err)
	}
	before := rt.n.Load()
	live, errs, err := s.HeartbeatAll(t.Context(), leases)
	if err != nil || live != 1 {
		t.Fatalf("heartbeat all: %d live, %v", live, err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("lease %d: %v", i, e)
		}
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Fatalf("heartbeat with 100 leases took %d round trips, want 1", n)
	}
}
