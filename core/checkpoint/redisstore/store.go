package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// Store is one worker's lease and checkpoint store for one (application,
// stream) in Redis. It implements checkpoint.Store, checkpoint.Timing,
// checkpoint.BatchRenewer and checkpoint.Leaver, is safe for concurrent use
// and owns no goroutines (the Redis client is the caller's to close).
type Store struct {
	c                  redis.UniversalClient
	app, stream        string
	id                 string
	session, heartbeat time.Duration
	base               string // key prefix with the hash tag
	shardsKey          string
	workersKey         string
}

var (
	_ checkpoint.Store        = (*Store)(nil)
	_ checkpoint.Timing       = (*Store)(nil)
	_ checkpoint.BatchRenewer = (*Store)(nil)
	_ checkpoint.Leaver       = (*Store)(nil)
)

// New returns a store for worker WithWorkerID (default
// checkpoint.DefaultWorkerID()) on (app, stream). It does no I/O.
func New(client redis.UniversalClient, app, stream string, opts ...Option) (*Store, error) {
	cfg := config{prefix: DefaultKeyPrefix, session: checkpoint.DefaultSessionTimeout, heartbeat: checkpoint.DefaultHeartbeatFrequency}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if len(cfg.errs) > 0 {
		return nil, cfg.errs[0]
	}
	if client == nil {
		return nil, fmt.Errorf("redisstore: nil client: %w", checkpoint.ErrInvalidOption)
	}
	if app == "" || stream == "" {
		return nil, fmt.Errorf("redisstore: needs an application (%q) and a stream (%q): %w", app, stream, checkpoint.ErrInvalidOption)
	}
	if cfg.heartbeat >= cfg.session {
		return nil, fmt.Errorf("redisstore: WithHeartbeatFrequency(%v) must be less than the session timeout %v: %w",
			cfg.heartbeat, cfg.session, checkpoint.ErrInvalidOption)
	}
	if cfg.id == "" {
		cfg.id = checkpoint.DefaultWorkerID()
	}
	base := keyBase(cfg.prefix, app, stream)
	return &Store{
		c: client, app: app, stream: stream, id: cfg.id, session: cfg.session, heartbeat: cfg.heartbeat,
		base: base, shardsKey: base + ":shards", workersKey: base + ":workers",
	}, nil
}

// keyBase is prefix{len:app:stream}: the length makes the pair unambiguous
// and the braces make it the Redis Cluster hash tag of every key.
func keyBase(prefix, app, stream string) string {
	return prefix + "{" + strconv.Itoa(len(app)) + ":" + app + ":" + stream + "}"
}

func (s *Store) leaseKey(shard string) string { return s.base + ":lease:" + shard }

// WorkerID implements checkpoint.Store.
func (s *Store) WorkerID() string { return s.id }

// SessionTimeout implements checkpoint.Timing.
func (s *Store) SessionTimeout() time.Duration { return s.session }

// HeartbeatFrequency implements checkpoint.Timing.
func (s *Store) HeartbeatFrequency() time.Duration { return s.heartbeat }

// KeyPrefix returns the prefix of every key this store uses (for
// inspection and clean-up): the configured prefix and the hash tag.
func (s *Store) KeyPrefix() string { return s.base }

func (s *Store) sessionMS() string { return strconv.FormatInt(s.session.Milliseconds(), 10) }

func (s *Store) wrap(op, shard string, err error) error {
	if shard == "" {
		return fmt.Errorf("redisstore: %s on %s/%s: %w", op, s.app, s.stream, err)
	}
	return fmt.Errorf("redisstore: %s shard %s of %s/%s: %w", op, shard, s.app, s.stream, err)
}

// Take implements checkpoint.Store.
func (s *Store) Take(ctx context.Context, shard string) (checkpoint.Lease, error) {
	if shard == "" {
		return checkpoint.Lease{}, fmt.Errorf("redisstore: take: empty shard id: %w", checkpoint.ErrInvalidCheckpoint)
	}
	r, err := takeScript.Run(ctx, s.c, []string{s.leaseKey(shard), s.shardsKey}, s.id, s.sessionMS(), shard).Slice()
	if err != nil {
		return checkpoint.Lease{}, s.wrap("take", shard, err)
	}
	var p parser
	ok := p.flag(r, 0)
	if !ok {
		le := &checkpoint.LeaseError{Op: "take", Shard: shard, Owner: p.str(r, 1), Counter: p.int(r, 2), Err: checkpoint.ErrLeaseHeld}
		if p.err != nil {
			return checkpoint.Lease{}, s.wrap("take", shard, p.err)
		}
		return checkpoint.Lease{}, le
	}
	l := checkpoint.Lease{Shard: shard, Owner: s.id, Counter: p.int(r, 1)}
	l.Checkpoint = p.checkpoint(r, 3)
	if p.err != nil {
		return checkpoint.Lease{}, s.wrap("take", shard, p.err)
	}
	return l, nil
}

// Renew implements checkpoint.Store. A lease past its expiry that no other
// worker has taken is still the caller's and is renewed.
func (s *Store) Renew(ctx context.Context, l checkpoint.Lease) error {
	_, errs, err := s.renew(ctx, false, "renew", []checkpoint.Lease{l})
	if err != nil {
		return err
	}
	return errs[0]
}

// RenewAll implements checkpoint.BatchRenewer: one script, one round trip.
func (s *Store) RenewAll(ctx context.Context, leases []checkpoint.Lease) ([]error, error) {
	if len(leases) == 0 {
		return []error{}, ctx.Err()
	}
	_, errs, err := s.renew(ctx, false, "renew", leases)
	return errs, err
}

// HeartbeatAll implements checkpoint.BatchRenewer: the heartbeat and every
// renewal in one script, one round trip.
func (s *Store) HeartbeatAll(ctx context.Context, leases []checkpoint.Lease) (int, []error, error) {
	return s.renew(ctx, true, "heartbeat", leases)
}

// Heartbeat implements checkpoint.Store: it records this worker in the
// registry (a sorted set scored by Redis-time expiry), drops workers whose
// registration expired, and returns how many remain.
func (s *Store) Heartbeat(ctx context.Context) (int, error) {
	n, _, err := s.renew(ctx, true, "heartbeat", nil)
	return n, err
}

func (s *Store) renew(ctx context.Context, beat bool, op string, leases []checkpoint.Lease) (int, []error, error) {
	keys := make([]string, 0, 1+len(leases))
	keys = append(keys, s.workersKey)
	args := make([]any, 0, 3+len(leases))
	b := "0"
	if beat {
		b = "1"
	}
	args = append(args, s.id, s.sessionMS(), b)
	for _, l := range leases {
		keys = append(keys, s.leaseKey(l.Shard))
		args = append(args, strconv.FormatInt(l.Counter, 10))
	}
	r, err := renewScript.Run(ctx, s.c, keys, args...).Slice()
	if err != nil {
		return 0, nil, s.wrap(op, "", err)
	}
	var p parser
	if len(r) != 1+3*len(leases) {
		return 0, nil, s.wrap(op, "", fmt.Errorf("renew script returned %d values for %d leases", len(r), len(leases)))
	}
	live := int(p.int(r, 0))
	errs := make([]error, len(leases))
	for i, l := range leases {
		j := 1 + 3*i
		if p.flag(r, j) && l.Owner == s.id {
			continue
		}
		errs[i] = &checkpoint.LeaseError{Op: "renew", Shard: l.Shard, Owner: p.str(r, j+1), Counter: p.int(r, j+2), Held: l.Counter, Err: checkpoint.ErrLeaseLost}
	}
	if p.err != nil {
		return 0, nil, s.wrap(op, "", p.err)
	}
	return live, errs, nil
}

// Leave implements checkpoint.Leaver.
func (s *Store) Leave(ctx context.Context) error {
	if err := s.c.ZRem(ctx, s.workersKey, s.id).Err(); err != nil {
		return s.wrap("leave", "", err)
	}
	return nil
}

// Checkpoint implements checkpoint.Store.
func (s *Store) Checkpoint(ctx context.Context, l checkpoint.Lease, c checkpoint.Checkpoint) error {
	if err := c.Validate(l.Shard); err != nil {
		return err
	}
	if l.Owner != s.id {
		return &checkpoint.LeaseError{Op: "checkpoint", Shard: l.Shard, Held: l.Counter, Err: checkpoint.ErrLeaseLost}
	}
	r, err := checkpointScript.Run(ctx, s.c, []string{s.leaseKey(l.Shard)}, s.id, strconv.FormatInt(l.Counter, 10),
		c.SequenceNumber, strconv.FormatInt(c.SubSequenceNumber, 10), bit(c.Complete), bit(c.Finished)).Slice()
	if err != nil {
		return s.wrap("checkpoint", l.Shard, err)
	}
	return s.casResult("checkpoint", l, r)
}

// Release implements checkpoint.Store.
func (s *Store) Release(ctx context.Context, l checkpoint.Lease) error {
	if l.Owner != s.id {
		return &checkpoint.LeaseError{Op: "release", Shard: l.Shard, Held: l.Counter, Err: checkpoint.ErrLeaseLost}
	}
	r, err := releaseScript.Run(ctx, s.c, []string{s.leaseKey(l.Shard)}, s.id, strconv.FormatInt(l.Counter, 10)).Slice()
	if err != nil {
		return s.wrap("release", l.Shard, err)
	}
	return s.casResult("release", l, r)
}

func (s *Store) casResult(op string, l checkpoint.Lease, r []any) error {
	var p parser
	if p.flag(r, 0) {
		return p.err
	}
	le := &checkpoint.LeaseError{Op: op, Shard: l.Shard, Owner: p.str(r, 1), Counter: p.int(r, 2), Held: l.Counter, Err: checkpoint.ErrLeaseLost}
	if p.err != nil {
		return s.wrap(op, l.Shard, p.err)
	}
	return le
}

var checkpointFields = []string{"seq", "sub", "complete", "finished"}

// Get implements checkpoint.Store. A Redis failure is an error, never the
// zero checkpoint.
func (s *Store) Get(ctx context.Context, shard string) (checkpoint.Checkpoint, error) {
	r, err := s.c.HMGet(ctx, s.leaseKey(shard), checkpointFields...).Result()
	if err != nil {
		return checkpoint.Checkpoint{}, s.wrap("get", shard, err)
	}
	var p parser
	c := p.checkpoint(r, 0)
	if p.err != nil {
		return checkpoint.Checkpoint{}, s.wrap("get", shard, p.err)
	}
	return c, nil
}

// Leases implements checkpoint.Store: every shard ever taken on this
// stream, sorted by shard id, in two round trips. Live is judged by Redis's
// clock.
func (s *Store) Leases(ctx context.Context) ([]checkpoint.LeaseInfo, error) {
	shards, err := s.c.SMembers(ctx, s.shardsKey).Result()
	if err != nil {
		return nil, s.wrap("list leases", "", err)
	}
	slices.Sort(shards)
	pipe := s.c.Pipeline()
	now := pipe.Time(ctx)
	cmds := make([]*redis.SliceCmd, len(shards))
	for i, sh := range shards {
		cmds[i] = pipe.HMGet(ctx, s.leaseKey(sh), "owner", "counter", "expires", "seq", "sub", "complete", "finished")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap("list leases", "", err)
	}
	t := now.Val()
	out := make([]checkpoint.LeaseInfo, 0, len(shards))
	for i, sh := range shards {
		var p parser
		r := cmds[i].Val()
		li := checkpoint.LeaseInfo{Shard: sh, Owner: p.str(r, 0), Counter: p.int(r, 1)}
		exp := p.int(r, 2)
		if exp > 0 {
			li.Expires = time.UnixMilli(exp)
		}
		li.Live = li.Owner != "" && exp > t.UnixMilli()
		li.Checkpoint = p.checkpoint(r, 3)
		if p.err != nil {
			return nil, s.wrap("list leases", sh, p.err)
		}
		out = append(out, li)
	}
	return out, nil
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// parser reads script and HMGET replies; the first malformed value sets err.
type parser struct{ err error }

func (p *parser) fail(i int, v any, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("malformed reply: value %d is %T %v, want %s", i, v, v, want)
	}
}

func (p *parser) str(r []any, i int) string {
	if i >= len(r) {
		p.fail(i, nil, "a string")
		return ""
	}
	switch v := r[i].(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		p.fail(i, v, "a string")
		return ""
	}
}

func (p *parser) int(r []any, i int) int64 {
	if i >= len(r) {
		p.fail(i, nil, "an integer")
		return 0
	}
	switch v := r[i].(type) {
	case nil:
		return 0
	case int64:
		return v
	case string:
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			p.fail(i, v, "an integer")
		}
		return n
	default:
		p.fail(i, v, "an integer")
		return 0
	}
}

func (p *parser) flag(r []any, i int) bool {
	switch n := p.int(r, i); n {
	case 0:
		return false
	case 1:
		return true
	default:
		p.fail(i, n, "0 or 1")
		return false
	}
}

// checkpoint reads seq, sub, complete, finished from r[i:].
func (p *parser) checkpoint(r []any, i int) checkpoint.Checkpoint {
	c := checkpoint.Checkpoint{
		SequenceNumber:    p.str(r, i),
		SubSequenceNumber: p.int(r, i+1),
		Complete:          p.flag(r, i+2),
		Finished:          p.flag(r, i+3),
	}
	if p.err == nil && !checkpoint.ValidSequence(c.SequenceNumber) {
		p.err = fmt.Errorf("stored sequence number %q is not a decimal integer", c.SequenceNumber)
	}
	return c
}
