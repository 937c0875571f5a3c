package redisstore

import (
	"fmt"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// DefaultKeyPrefix starts every key the store writes.
const DefaultKeyPrefix = "shardwork:"

// Option configures New.
type Option func(*config)

type config struct {
	prefix             string
	session, heartbeat time.Duration
	id                 string
	errs               []error
}

func (c *config) fail(err error) { c.errs = append(c.errs, err) }

// WithKeyPrefix sets the prefix of every key (default "shardwork:"). It
// must not contain '{' or '}': the store adds its own hash tag.
func WithKeyPrefix(p string) Option {
	return func(c *config) {
		for _, r := range p {
			if r == '{' || r == '}' {
				c.fail(fmt.Errorf("redisstore: WithKeyPrefix(%q): must not contain braces: %w", p, checkpoint.ErrInvalidOption))
				return
			}
		}
		c.prefix = p
	}
}

// WithSessionTimeout sets how long a lease, and the worker's registration,
// lasts without renewal (default 60 s, at least 1 ms; Redis keeps
// milliseconds).
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail(fmt.Errorf("redisstore: WithSessionTimeout(%v): must be at least 1ms: %w", d, checkpoint.ErrInvalidOption))
			return
		}
		c.session = d
	}
}

// WithHeartbeatFrequency sets how often a consumer should heartbeat and
// renew (default 15 s); it must be below the session timeout.
func WithHeartbeatFrequency(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(fmt.Errorf("redisstore: WithHeartbeatFrequency(%v): must be positive: %w", d, checkpoint.ErrInvalidOption))
			return
		}
		c.heartbeat = d
	}
}

// WithWorkerID sets the worker identity (default
// checkpoint.DefaultWorkerID(), unique per call).
func WithWorkerID(id string) Option {
	return func(c *config) {
		if id == "" {
			c.fail(fmt.Errorf("redisstore: WithWorkerID(%q): must not be empty: %w", id, checkpoint.ErrInvalidOption))
			return
		}
		c.id = id
	}
}
