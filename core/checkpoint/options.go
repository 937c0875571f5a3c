package checkpoint

import (
	"fmt"
	"time"
)

// Defaults, as in async-kinesis's RedisCheckPointer.
const (
	DefaultSessionTimeout     = 60 * time.Second
	DefaultHeartbeatFrequency = 15 * time.Second
)

// Option configures the memory store (NewMemoryBackend, MemoryBackend.Store,
// NewMemory).
type Option func(*config)

type config struct {
	session, heartbeat       time.Duration
	sessionSet, heartbeatSet bool
	workerID                 string
	workerIDSet              bool
	now                      func() time.Time
	nowSet                   bool
	errs                     []error
}

// WithSessionTimeout sets how long a lease (and a worker's registration)
// lasts without renewal. Default 60 s.
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("checkpoint: WithSessionTimeout(%v): must be positive: %w", d, ErrInvalidOption))
			return
		}
		c.session, c.sessionSet = d, true
	}
}

// WithHeartbeatFrequency sets how often a consumer should heartbeat and
// renew its leases; it must be below the session timeout. Default 15 s.
func WithHeartbeatFrequency(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("checkpoint: WithHeartbeatFrequency(%v): must be positive: %w", d, ErrInvalidOption))
			return
		}
		c.heartbeat, c.heartbeatSet = d, true
	}
}

// WithWorkerID sets the store's worker identity (default DefaultWorkerID()).
// It applies to one store, not to a backend.
func WithWorkerID(id string) Option {
	return func(c *config) {
		if id == "" {
			c.errs = append(c.errs, fmt.Errorf("checkpoint: WithWorkerID(%q): must not be empty: %w", id, ErrInvalidOption))
			return
		}
		c.workerID, c.workerIDSet = id, true
	}
}

// WithClock sets the clock the memory backend judges expiry by (default
// time.Now). It applies to a backend (NewMemoryBackend, NewMemory), not to
// one of its stores.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.errs = append(c.errs, fmt.Errorf("checkpoint: WithClock(nil): %w", ErrInvalidOption))
			return
		}
		c.now, c.nowSet = now, true
	}
}

func (c *config) apply(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(c)
	}
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	return nil
}

// checkTiming validates the pair once both are known.
func checkTiming(session, heartbeat time.Duration) error {
	if heartbeat >= session {
		return fmt.Errorf("checkpoint: WithHeartbeatFrequency(%v) must be less than the session timeout %v: %w",
			heartbeat, session, ErrInvalidOption)
	}
	return nil
}
