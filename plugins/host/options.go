package host

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shardwork/shardwork/plugins/abi"
)

// ErrInvalidOption is wrapped by every error about a bad option value.
var ErrInvalidOption = errors.New("invalid option")

// Option configures Load.
type Option func(*config) error

type config struct {
	cacheDir       string
	logger         *slog.Logger
	trusted        bool
	callTimeout    time.Duration
	memoryPages    uint32
	poolSize       int
	recycleCalls   int
	recycleMemory  uint32
	breakerFails   int
	breakerCool    time.Duration
	maxIsolated    int
	pluginConfig   []byte
	kinds          []abi.Kind
	maxOutputBytes int
	now            func() time.Time
	noIsolation    bool
	initTimeout    time.Duration
}

func defaults() config {
	return config{
		logger:         slog.New(slog.DiscardHandler),
		callTimeout:    5 * time.Second,
		initTimeout:    30 * time.Second,
		memoryPages:    4096, // 256 MiB
		poolSize:       4,
		recycleCalls:   100_000,
		recycleMemory:  128 << 20,
		breakerFails:   5,
		breakerCool:    30 * time.Second,
		maxIsolated:    16,
		maxOutputBytes: 64 << 10,
		now:            time.Now,
	}
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithCacheDir keeps compiled code in dir (wazero's on-disk compilation
// cache), so the next process loads the plugin in milliseconds. Compile
// fills it ahead of time.
func WithCacheDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return bad("cache dir is empty")
		}
		c.cacheDir = dir
		return nil
	}
}

// WithLogger receives plugin logs and the guest's stdout and stderr.
// The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return bad("logger is nil")
		}
		c.logger = l
		return nil
	}
}

// WithTrusted runs the plugin without a per-call deadline, which makes its
// calls and loops faster. Only for vetted plugins: a guest that never
// returns then blocks its caller forever.
func WithTrusted() Option {
	return func(c *config) error { c.trusted = true; return nil }
}

// WithCallTimeout is the per-call deadline in sandboxed mode (default 5s).
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return bad("call timeout %v is not positive", d)
		}
		c.callTimeout = d
		return nil
	}
}

// WithMemoryLimitPages caps each instance's memory in 64 KiB pages
// (default 4096 = 256 MiB).
func WithMemoryLimitPages(pages uint32) Option {
	return func(c *config) error {
		if pages == 0 || pages > 65536 {
			return bad("memory limit of %d pages is outside [1, 65536]", pages)
		}
		c.memoryPages = pages
		return nil
	}
}

// WithPoolSize is the maximum number of instances, hence of concurrent calls
// (default 4).
func WithPoolSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return bad("pool size %d is below 1", n)
		}
		c.poolSize = n
		return nil
	}
}

// WithRecycle replaces an instance after calls calls or once its memory
// exceeds memoryBytes (defaults 100000 calls, 128 MiB).
func WithRecycle(calls int, memoryBytes uint32) Option {
	return func(c *config) error {
		if calls < 1 {
			return bad("recycle after %d calls is below 1", calls)
		}
		if memoryBytes < 1<<16 {
			return bad("recycle memory bound %d is below one page", memoryBytes)
		}
		c.recycleCalls, c.recycleMemory = calls, memoryBytes
		return nil
	}
}

// WithCircuitBreaker opens the breaker after fails consecutive failed
// operations; calls then fail fast with ErrCircuitOpen until cooldown has
// passed, when one call is let through (defaults 5, 30s).
func WithCircuitBreaker(fails int, cooldown time.Duration) Option {
	return func(c *config) error {
		if fails < 1 {
			return bad("circuit breaker threshold %d is below 1", fails)
		}
		if cooldown <= 0 {
			return bad("circuit breaker cooldown %v is not positive", cooldown)
		}
		c.breakerFails, c.breakerCool = fails, cooldown
		return nil
	}
}

// WithMaxIsolated bounds how many records one batch may lose to isolation
// (bisection) before the whole batch is failed instead (default 16).
func WithMaxIsolated(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return bad("max isolated records %d is below 1", n)
		}
		c.maxIsolated = n
		return nil
	}
}

// WithConfig is the JSON given to the plugin's init export.
func WithConfig(json []byte) Option {
	return func(c *config) error { c.pluginConfig = json; return nil }
}

// WithKinds makes Load fail unless the plugin implements every kind given.
func WithKinds(kinds ...abi.Kind) Option {
	return func(c *config) error {
		for _, k := range kinds {
			if k.Exports() == nil {
				return bad("unknown plugin kind %q", k)
			}
		}
		c.kinds = kinds
		return nil
	}
}

// WithMaxOutputBytes bounds how much of the guest's stdout and stderr is
// logged per call (default 64 KiB); the rest is counted and dropped.
func WithMaxOutputBytes(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return bad("max output bytes %d is negative", n)
		}
		c.maxOutputBytes = n
		return nil
	}
}

// WithoutIsolation turns off the retry and bisection of failed calls: a
// failed call fails the whole operation with the guest's exact error. The
// conformance kit uses it so that a broken plugin is reported precisely.
func WithoutIsolation() Option {
	return func(c *config) error { c.noIsolation = true; return nil }
}

// WithInitTimeout bounds instantiating an instance and running its
// _initialize, abi_version, describe and init (default 30s, in both modes).
// It is separate from the call timeout because a Go guest's runtime start
// can take longer than a batch call should.
func WithInitTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return bad("init timeout %v is not positive", d)
		}
		c.initTimeout = d
		return nil
	}
}
