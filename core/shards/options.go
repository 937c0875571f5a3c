package shards

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/records"
)

// ErrInvalidOption is wrapped by every error New returns for a bad option.
var ErrInvalidOption = errors.New("invalid option")

// IteratorType is where a shard without a checkpoint starts.
type IteratorType string

// Starting positions for shards that have no checkpoint yet.
const (
	TrimHorizon IteratorType = "TRIM_HORIZON" // the oldest record still in the shard
	Latest      IteratorType = "LATEST"       // only records written after the shard is opened
	AtTimestamp IteratorType = "AT_TIMESTAMP" // records from Timestamp on
)

// Kinesis limits the consumer stays within.
const (
	// MaxFetchRate is the Kinesis limit of GetRecords calls per second per shard.
	MaxFetchRate = 5
	// MaxRecordLimit is the most records one GetRecords call may return.
	MaxRecordLimit = 10000
	// ShardReadBytesPerSecond is the Kinesis read limit per shard (2 MiB/s).
	ShardReadBytesPerSecond = 2 << 20
)

type config struct {
	maxQueueSize      int
	maxShardConsumers int
	recordLimit       int
	sleepCaughtUp     time.Duration
	iteratorType      IteratorType
	timestamp         time.Time
	fetchRate         float64
	readBytesPerSec   int
	store             checkpoint.Store
	processor         *records.Processor
	retryLimit        int
	backoffMin        time.Duration
	backoffMax        time.Duration
	createStream      bool
	createShards      int
	appName           string
	errorCallback     func(error)
	logger            *slog.Logger
	shutdownTimeout   time.Duration
	maxBatchSize      int
	leaseInterval     time.Duration
	listInterval      time.Duration
	checkpointEvery   time.Duration
	onLease           func(LeaseEvent)
	emitter           Emitter
}

func defaultConfig() config {
	return config{
		maxQueueSize:    10000,
		recordLimit:     MaxRecordLimit,
		sleepCaughtUp:   2 * time.Second,
		iteratorType:    TrimHorizon,
		fetchRate:       1,
		readBytesPerSec: ShardReadBytesPerSecond,
		backoffMin:      100 * time.Millisecond,
		backoffMax:      120 * time.Second,
		createShards:    1,
		appName:         "shardwork",
		shutdownTimeout: 30 * time.Second,
		maxBatchSize:    500,
		listInterval:    60 * time.Second,
		checkpointEvery: time.Second,
	}
}

// Option configures a Consumer. Options are validated once, by New.
type Option func(*config) error

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// MaxQueueSize bounds the records fetched but not yet delivered, across all
// shards (default 10000). A full queue blocks the shard fetchers; nothing is
// dropped.
func MaxQueueSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalid("MaxQueueSize %d: want ≥ 1", n)
		}
		c.maxQueueSize = n
		return nil
	}
}

// MaxShardConsumers caps how many shards this consumer leases at once
// (default 0: no limit).
func MaxShardConsumers(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return invalid("MaxShardConsumers %d: want ≥ 0", n)
		}
		c.maxShardConsumers = n
		return nil
	}
}

// RecordLimit is the Limit of each GetRecords call (default and maximum
// 10000).
func RecordLimit(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxRecordLimit {
			return invalid("RecordLimit %d: want 1..%d", n, MaxRecordLimit)
		}
		c.recordLimit = n
		return nil
	}
}

// SleepWhenCaughtUp is how long a shard's fetcher waits after an empty read
// at the tip of the shard (default 2 s). It only delays that shard.
func SleepWhenCaughtUp(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("SleepWhenCaughtUp %v: want ≥ 0", d)
		}
		c.sleepCaughtUp = d
		return nil
	}
}

// StartAt sets where shards without a checkpoint start (default
// TRIM_HORIZON). AT_TIMESTAMP needs a non-zero timestamp; the others take
// the zero time.
func StartAt(t IteratorType, timestamp time.Time) Option {
	return func(c *config) error {
		switch t {
		case TrimHorizon, Latest:
			if !timestamp.IsZero() {
				return invalid("StartAt %s with timestamp %v: a timestamp needs AT_TIMESTAMP", t, timestamp)
			}
		case AtTimestamp:
			if timestamp.IsZero() {
				return invalid("StartAt AT_TIMESTAMP: timestamp is zero")
			}
		default:
			return invalid("StartAt iterator type %q: want TRIM_HORIZON, LATEST or AT_TIMESTAMP", t)
		}
		c.iteratorType, c.timestamp = t, timestamp
		return nil
	}
}

// ShardFetchRate is how many GetRecords calls per second each shard makes
// at most (default 1, maximum 5: the Kinesis limit per shard, shared by all
// consumers of the stream).
func ShardFetchRate(perSecond float64) Option {
	return func(c *config) error {
		if !(perSecond > 0 && perSecond <= MaxFetchRate) {
			return invalid("ShardFetchRate %v: want (0, %d]", perSecond, MaxFetchRate)
		}
		c.fetchRate = perSecond
		return nil
	}
}

// ShardReadRate caps the bytes read per second per shard (default and
// maximum 2 MiB/s, the Kinesis limit).
func ShardReadRate(bytesPerSecond int) Option {
	return func(c *config) error {
		if bytesPerSecond < 1 || bytesPerSecond > ShardReadBytesPerSecond {
			return invalid("ShardReadRate %d: want 1..%d", bytesPerSecond, ShardReadBytesPerSecond)
		}
		c.readBytesPerSec = bytesPerSecond
		return nil
	}
}

// Checkpointer sets the lease and checkpoint store (default: an in-memory
// store, for a single process).
func Checkpointer(s checkpoint.Store) Option {
	return func(c *config) error {
		if s == nil {
			return invalid("Checkpointer is nil")
		}
		c.store = s
		return nil
	}
}

// Processor sets how Kinesis records are unpacked and decoded (default
// JSON, no aggregation). It must match the producer's.
func Processor(p records.Processor) Option {
	return func(c *config) error {
		if p.Aggregator == nil || p.Serializer == nil {
			return invalid("Processor %q: needs an Aggregator and a Serializer", p.Name)
		}
		c.processor = &p
		return nil
	}
}

// RetryLimit is how many consecutive failed attempts of one operation (a
// Kinesis call, a handler batch) are made before giving up (default 0: no
// limit).
func RetryLimit(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return invalid("RetryLimit %d: want ≥ 0", n)
		}
		c.retryLimit = n
		return nil
	}
}

// Backoff sets the capped, jittered exponential backoff between retries
// (default 100 ms doubling up to 120 s).
func Backoff(initial, max time.Duration) Option {
	return func(c *config) error {
		if initial <= 0 || max < initial {
			return invalid("Backoff(%v, %v): want 0 < initial ≤ max", initial, max)
		}
		c.backoffMin, c.backoffMax = initial, max
		return nil
	}
}

// CreateStream creates the stream with the given shard count when it does
// not exist and waits for it to become ACTIVE. An existing stream is left
// as it is.
func CreateStream(shards int) Option {
	return func(c *config) error {
		if shards < 1 {
			return invalid("CreateStream shards %d: want ≥ 1", shards)
		}
		c.createStream, c.createShards = true, shards
		return nil
	}
}

// AppName names the application for the default store (default
// "shardwork").
func AppName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return invalid("AppName is empty")
		}
		c.appName = name
		return nil
	}
}

// ErrorCallback receives every error the consumer handles without stopping:
// records that fail to decode (*RecordError), records a handler failed,
// lost leases and store or Kinesis errors that are retried (*ShardError).
// It is called from the consumer's goroutines and must not block for long.
func ErrorCallback(f func(error)) Option {
	return func(c *config) error {
		c.errorCallback = f
		return nil
	}
}

// Logger sets the logger (default: silent).
func Logger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// ShutdownTimeout bounds how long stopping waits for in-flight records and
// final checkpoints (default 30 s).
func ShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("ShutdownTimeout %v: want > 0", d)
		}
		c.shutdownTimeout = d
		return nil
	}
}

// MaxBatchSize is the most records Run hands to the handler at once
// (default 500).
func MaxBatchSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalid("MaxBatchSize %d: want ≥ 1", n)
		}
		c.maxBatchSize = n
		return nil
	}
}

// LeaseInterval is how often the consumer heartbeats, renews its leases
// and looks for shards to take (default: the store's heartbeat frequency
// when it reports one, else 10 s).
func LeaseInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("LeaseInterval %v: want > 0", d)
		}
		c.leaseInterval = d
		return nil
	}
}

// ShardListInterval is how often the shard list is refreshed to find new
// shards after a reshard (default 60 s). A shard reaching SHARD_END also
// triggers a refresh.
func ShardListInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("ShardListInterval %v: want > 0", d)
		}
		c.listInterval = d
		return nil
	}
}

// CheckpointInterval is how often each shard writes its checkpoint when it
// advanced (default 1 s). Final checkpoints are always written on stop.
func CheckpointInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("CheckpointInterval %v: want > 0", d)
		}
		c.checkpointEvery = d
		return nil
	}
}

// LeaseEvent reports a lease this consumer started or stopped using.
type LeaseEvent struct {
	Shard   string
	Owner   string
	Counter int64
	// Acquired is true when the consumer took the lease and positioned
	// the shard's iterator (a LATEST start is fixed from this moment);
	// false when it stopped using the shard (released, finished, or lost).
	Acquired bool
	// Err is why the lease ended: nil (released or finished), or an error
	// wrapping checkpoint.ErrLeaseLost.
	Err error
}

// OnLease registers a function called when this consumer starts reading a
// shard under a lease and after it stopped (before the lease is released).
// No record of the shard is delivered outside those two calls.
func OnLease(f func(LeaseEvent)) Option {
	return func(c *config) error {
		c.onLease = f
		return nil
	}
}
