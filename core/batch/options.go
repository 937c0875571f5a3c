package batch

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/shardwork/shardwork/core/records"
)

// Kinesis PutRecords limits.
const (
	// MaxBatchRecords is the most entries one PutRecords call may carry.
	MaxBatchRecords = 500
	// MaxBatchBytes is the most data plus partition keys one PutRecords call
	// may carry (5 MiB).
	MaxBatchBytes = 5 << 20
)

// Defaults, following async-kinesis where it has a setting.
const (
	DefaultBufferTime           = 500 * time.Millisecond
	DefaultBatchSize            = MaxBatchRecords
	DefaultMaxQueueSize         = 10000
	DefaultMaxQueueBytes        = 64 << 20
	DefaultPutRateLimit         = 1000    // records per second per shard
	DefaultBandwidthLimit       = 1 << 20 // bytes per second per shard
	DefaultRetryLimit           = 10
	DefaultBackoffBase          = 100 * time.Millisecond
	DefaultBackoffMax           = 120 * time.Second
	DefaultMaxInFlight          = 4
	DefaultRequestTimeout       = 30 * time.Second
	DefaultShardRefreshInterval = time.Minute
	// maxListedFailures bounds how many failed records a DeliveryError keeps;
	// beyond it only the count grows.
	maxListedFailures = 10000
)

// Option configures a Producer. Options are checked once, by New.
type Option func(*config)

type config struct {
	processor        records.Processor
	bufferTime       time.Duration
	batchSize        int
	maxQueueSize     int
	maxQueueBytes    int
	putRateLimit     int
	bandwidthLimit   int
	retryLimit       int
	backoffBase      time.Duration
	backoffMax       time.Duration
	maxInFlight      int
	requestTimeout   time.Duration
	refreshInterval  time.Duration
	createStream     bool
	createShards     int
	orderPerKey      bool
	errorCallback    func(FailedRecord)
	afterFlush       func(FlushInfo)
	logger           *slog.Logger
	partitionKeyFunc func(item any) string
	errs             []error
}

func defaultConfig() config {
	return config{
		processor:       records.JSONProcessor(),
		bufferTime:      DefaultBufferTime,
		batchSize:       DefaultBatchSize,
		maxQueueSize:    DefaultMaxQueueSize,
		maxQueueBytes:   DefaultMaxQueueBytes,
		putRateLimit:    DefaultPutRateLimit,
		bandwidthLimit:  DefaultBandwidthLimit,
		retryLimit:      DefaultRetryLimit,
		backoffBase:     DefaultBackoffBase,
		backoffMax:      DefaultBackoffMax,
		maxInFlight:     DefaultMaxInFlight,
		requestTimeout:  DefaultRequestTimeout,
		refreshInterval: DefaultShardRefreshInterval,
		orderPerKey:     true,
		logger:          slog.New(slog.DiscardHandler),
	}
}

func (c *config) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

func (c *config) validate() error {
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	if c.processor.Serializer == nil || c.processor.Aggregator == nil {
		return fmt.Errorf("%w: Processor %q: needs both a Serializer and an Aggregator", ErrInvalidOption, c.processor.Name)
	}
	return nil
}

// WithProcessor sets the serializer and aggregator (default: JSON, one item
// per Kinesis record).
func WithProcessor(p records.Processor) Option {
	return func(c *config) {
		if p.Serializer == nil || p.Aggregator == nil {
			c.bad("Processor %q: needs both a Serializer and an Aggregator", p.Name)
			return
		}
		c.processor = p
	}
}

// BufferTime is how long a record may wait for more records before it is
// sent (default 0.5 s). A full batch is sent at once.
func BufferTime(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.bad("BufferTime %v: want > 0", d)
			return
		}
		c.bufferTime = d
	}
}

// BatchSize is the number of buffered records that triggers a send, and the
// most Kinesis records in one PutRecords call (1..500, default 500).
func BatchSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxBatchRecords {
			c.bad("BatchSize %d: want 1..%d", n, MaxBatchRecords)
			return
		}
		c.batchSize = n
	}
}

// MaxQueueSize bounds the records accepted by Put and not yet delivered or
// failed (default 10000). Put blocks and TryPut fails beyond it.
func MaxQueueSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.bad("MaxQueueSize %d: want >= 1", n)
			return
		}
		c.maxQueueSize = n
	}
}

// MaxQueueBytes bounds the bytes (data plus partition keys) accepted by Put
// and not yet delivered or failed (default 64 MiB, at least 1 MiB + 256).
func MaxQueueBytes(n int) Option {
	return func(c *config) {
		if n < records.MaxRecordSize+records.MaxPartitionKeyLen {
			c.bad("MaxQueueBytes %d: want >= %d (one record of the largest size)", n, records.MaxRecordSize+records.MaxPartitionKeyLen)
			return
		}
		c.maxQueueBytes = n
	}
}

// PutRateLimit is the most Kinesis records per second the producer sends to
// one shard (default 1000, the Kinesis limit).
func PutRateLimit(perShard int) Option {
	return func(c *config) {
		if perShard < 1 {
			c.bad("PutRateLimit %d: want >= 1 record/s per shard", perShard)
			return
		}
		c.putRateLimit = perShard
	}
}

// BandwidthLimit is the most bytes (data plus partition keys) per second
// the producer sends to one shard (default 1 MiB, the Kinesis limit). It
// must admit one record of the largest size.
func BandwidthLimit(bytesPerShard int) Option {
	return func(c *config) {
		if bytesPerShard < 1024 {
			c.bad("BandwidthLimit %d: want >= 1024 bytes/s per shard", bytesPerShard)
			return
		}
		c.bandwidthLimit = bytesPerShard
	}
}

// RetryLimit is how many times a failed record is sent again before it is
// given up (default 10; 0 sends each record once).
func RetryLimit(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.bad("RetryLimit %d: want >= 0", n)
			return
		}
		c.retryLimit = n
	}
}

// Backoff sets the capped exponential backoff between retries: the n-th
// retry of a shard waits a random time in [0, min(max, base*2^(n-1))]
// (full jitter). Defaults: 100 ms and 120 s.
func Backoff(base, max time.Duration) Option {
	return func(c *config) {
		if base <= 0 || max < base {
			c.bad("Backoff %v..%v: want 0 < base <= max", base, max)
			return
		}
		c.backoffBase, c.backoffMax = base, max
	}
}

// MaxInFlight bounds concurrent PutRecords calls (default 4). It also
// bounds throughput to MaxInFlight × BatchSize records per round trip:
// raise it for streams of many shards or when calls are slow.
func MaxInFlight(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.bad("MaxInFlight %d: want >= 1", n)
			return
		}
		c.maxInFlight = n
	}
}

// RequestTimeout bounds one PutRecords or ListShards call (default 30 s).
func RequestTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.bad("RequestTimeout %v: want > 0", d)
			return
		}
		c.requestTimeout = d
	}
}

// ShardRefreshInterval is how often the shard map is listed again (default
// 1 min). It is also refreshed at once when Kinesis puts a record on
// another shard than predicted.
func ShardRefreshInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.bad("ShardRefreshInterval %v: want > 0", d)
			return
		}
		c.refreshInterval = d
	}
}

// CreateStream makes Start create the stream with this many shards when it
// does not exist. An existing stream is left as it is.
func CreateStream(shards int) Option {
	return func(c *config) {
		if shards < 1 {
			c.bad("CreateStream %d: want >= 1 shard", shards)
			return
		}
		c.createStream, c.createShards = true, shards
	}
}

// OrderPerKey keeps records of the same partition key in Put order across
// retries (default true). See the package documentation for what is
// guaranteed and what it costs; false lets a retried record land after
// records put later with the same key.
func OrderPerKey(on bool) Option {
	return func(c *config) { c.orderPerKey = on }
}

// ErrorCallback is called for every record given up after RetryLimit (and
// for records still undelivered when Close's context ends). It runs on the
// producer's goroutine: it must return quickly and must not call Put,
// Flush or Close (they wait for this goroutine).
func ErrorCallback(f func(FailedRecord)) Option {
	return func(c *config) { c.errorCallback = f }
}

// AfterFlush is called after every PutRecords call with what it carried
// and how it went. It runs on the producer's goroutine: it must return
// quickly and must not call Put, Flush or Close (they wait for this
// goroutine).
func AfterFlush(f func(FlushInfo)) Option {
	return func(c *config) { c.afterFlush = f }
}

// Logger sets the logger (default: discard everything).
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.bad("Logger: nil")
			return
		}
		c.logger = l
	}
}

// PartitionKeyFunc derives the partition key of items put with Put or
// TryPut. An empty result falls back to a random key.
func PartitionKeyFunc(f func(item any) string) Option {
	return func(c *config) { c.partitionKeyFunc = f }
}
