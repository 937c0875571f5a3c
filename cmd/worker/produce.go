package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
)

var (
	optPKField      = &option{key: "partition_key_field", usage: "top-level JSON field whose value is the partition key (default: a random key per record)"}
	optCreateStream = &option{key: "create_stream", usage: "create the stream when it does not exist (with --shards shards)", def: "false", kind: kBool}
	optProgress     = &option{key: "progress", usage: "live progress line on stderr: auto (on a terminal), always or never", def: "auto", kind: kEnum, enum: []string{"auto", "always", "never"}}
	optSummary      = &option{key: "summary", usage: "final summary on stdout: text or json", def: "text", kind: kEnum, enum: []string{"text", "json"}}
	optDrain        = &option{key: "shutdown_timeout", usage: "on SIGTERM/SIGINT, how long to finish in-flight work before giving up", def: "30s", kind: kDuration, min: int64(time.Millisecond)}
	// Producer tuning (defaults are the producer's).
	optBufferTime  = &option{key: "buffer_time", usage: "how long a record may wait for a fuller batch", kind: kDuration, min: 0}
	optBatchSize   = &option{key: "batch_size", usage: "Kinesis records per PutRecords call (at most 500)", kind: kInt, min: 1}
	optQueueSize   = &option{key: "max_queue_size", usage: "records the producer may hold before Put blocks", kind: kInt, min: 1}
	optPutRate     = &option{key: "put_rate_limit", usage: "Kinesis records per second per shard", kind: kInt, min: 1}
	optBandwidth   = &option{key: "bandwidth_limit", usage: "bytes per second per shard", kind: kInt, min: 1}
	optRetryLimit  = &option{key: "retry_limit", usage: "attempts before a record is given up", kind: kInt, min: 0}
	optMaxInFlight = &option{key: "max_in_flight", usage: "concurrent PutRecords calls", kind: kInt, min: 1}
)

var producerOptions = []*option{optBufferTime, optBatchSize, optQueueSize, optPutRate, optBandwidth, optRetryLimit, optMaxInFlight}

func init() {
	registerKeys(optPKField, optCreateStream, optProgress, optSummary, optDrain)
	registerKeys(producerOptions...)
}

// producerOpts turns the tuning settings that were given into producer
// options.
func producerOpts(cfg *config, proc records.Processor, log *slog.Logger) []batch.Option {
	opts := []batch.Option{batch.WithProcessor(proc), batch.Logger(log)}
	if cfg.isSet("buffer_time") {
		opts = append(opts, batch.BufferTime(cfg.dur("buffer_time")))
	}
	if cfg.isSet("batch_size") {
		opts = append(opts, batch.BatchSize(cfg.int("batch_size")))
	}
	if cfg.isSet("max_queue_size") {
		opts = append(opts, batch.MaxQueueSize(cfg.int("max_queue_size")))
	}
	if cfg.isSet("put_rate_limit") {
		opts = append(opts, batch.PutRateLimit(cfg.int("put_rate_limit")))
	}
	if cfg.isSet("bandwidth_limit") {
		opts = append(opts, batch.BandwidthLimit(cfg.int("bandwidth_limit")))
	}
	if cfg.isSet("retry_limit") {
		opts = append(opts, batch.RetryLimit(cfg.int("retry_limit")))
	}
	if cfg.isSet("max_in_flight") {
		opts = append(opts, batch.MaxInFlight(cfg.int("max_in_flight")))
	}
	return opts
}

// produceSummary is what produce reports at the end.
type produceSummary struct {
	Lines          int64   `json:"lines"`
	Records        int64   `json:"records"`
	Delivered      int64   `json:"delivered"`
	KinesisRecords int64   `json:"kinesis_records"`
	Bytes          int64   `json:"bytes"`
	DurationSec    float64 `json:"duration_s"`
	RecordsPerSec  float64 `json:"records_per_s"`
	MBPerSec       float64 `json:"mb_per_s"`
	Throttled      int64   `json:"throttled"`
	Retried        int64   `json:"retried"`
	Failed         int64   `json:"failed"`
	Rejected       int64   `json:"rejected"`
	Interrupted    bool    `json:"interrupted,omitempty"`
}

func (c *cli) produce(ctx context.Context, args []string) error {
	opts := append([]*option{optStream, optInput, optProcessor, optPKField, optCreateStream, optShards,
		optProgress, optSummary, optDrain, optCacheDir, optCallTimeout, optTrusted}, producerOptions...)
	cfg, err := c.loadConfig("produce", args, opts...)
	if err != nil {
		return err
	}
	stream, err := streamName(cfg)
	if err != nil {
		return err
	}
	log := c.newLogger(cfg)
	proc, closeProc, err := c.resolveProcessor(ctx, cfg, "processor", log)
	if err != nil {
		return err
	}
	defer closeProc(context.WithoutCancel(ctx))

	in, size, closeIn, err := c.openInput(cfg)
	if err != nil {
		return err
	}
	defer closeIn()

	cl, err := kinesisClient(ctx, cfg)
	if err != nil {
		return err
	}
	popts := producerOpts(cfg, proc, log)
	if cfg.bool("create_stream") {
		popts = append(popts, batch.CreateStream(cfg.int("shards")))
	}
	p, err := batch.New(cl, stream, popts...)
	if err != nil {
		return &usageError{fmt.Errorf("invalid config: %w", err)}
	}
	if err := p.Start(ctx); err != nil {
		if errors.Is(err, batch.ErrStreamNotFound) {
			return fmt.Errorf("stream %s not found (use --create-stream to create it)", stream)
		}
		return fmt.Errorf("start producer: %w", err)
	}

	start := time.Now()
	counter := &countingReader{r: in}
	var lines, rejected atomic.Int64
	var rejects []string

	showProgress := cfg.str("progress") == "always" || (cfg.str("progress") == "auto" && isTerminal(c.stderr))
	var prog *progress
	if showProgress {
		prog = startProgress(c.stderr, start, size, counter, &lines, p.Stats)
	}

	readErr := func() error {
		sc := bufio.NewScanner(counter)
		sc.Buffer(make([]byte, 0, 64<<10), 2*records.MaxRecordSize)
		pkField := cfg.str("partition_key_field")
		n := int64(0)
		for sc.Scan() {
			n++
			lines.Store(n)
			line := sc.Bytes()
			if len(strings.TrimSpace(string(line))) == 0 && proc.Name != records.NameString && proc.Name != records.NameKPLString {
				continue
			}
			reject := func(err error) {
				rejected.Add(1)
				if len(rejects) < 1000 {
					rejects = append(rejects, fmt.Sprintf("line %d: %v", n, err))
				}
			}
			item, err := itemFromLine(proc.Name, line)
			if err != nil {
				reject(err)
				continue
			}
			key := ""
			if pkField != "" {
				key = fieldKey(line, pkField)
			}
			if key != "" {
				err = p.PutWithKey(ctx, item, key)
			} else {
				err = p.Put(ctx, item)
			}
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, batch.ErrInvalidRecord):
				reject(err)
			default:
				return fmt.Errorf("line %d: %w", n, err)
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return usagef("line %d is longer than %d bytes", n+1, 2*records.MaxRecordSize)
			}
			return fmt.Errorf("read input: %w", err)
		}
		return nil
	}()

	interrupted := ctx.Err() != nil
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.dur("shutdown_timeout"))
	closeErr := p.Close(closeCtx)
	cancel()
	prog.stop()

	st := p.Stats()
	dur := time.Since(start)
	sum := produceSummary{
		Lines: lines.Load(), Records: st.RecordsPut, Delivered: st.RecordsDelivered,
		KinesisRecords: st.KinesisRecords, Bytes: st.BytesDelivered, DurationSec: dur.Seconds(),
		Throttled: st.Throttled, Retried: st.Retried, Failed: st.Failed, Rejected: rejected.Load(),
		Interrupted: interrupted,
	}
	if s := dur.Seconds(); s > 0 {
		sum.RecordsPerSec = float64(st.RecordsDelivered) / s
		sum.MBPerSec = float64(st.BytesDelivered) / s / 1e6
	}
	c.printSummary(cfg.str("summary"), sum)

	for _, r := range rejects {
		fmt.Fprintf(c.stderr, "rejected: %s\n", r)
	}
	var de *batch.DeliveryError
	if errors.As(closeErr, &de) {
		for _, f := range de.Records {
			fmt.Fprintf(c.stderr, "undelivered: %s: %s\n", describeItem(f.Item, f.Data), f.Error())
		}
		if de.Count > len(de.Records) {
			fmt.Fprintf(c.stderr, "undelivered: and %d more\n", de.Count-len(de.Records))
		}
	}
	switch {
	case readErr != nil && !interrupted:
		return readErr
	case closeErr != nil && de == nil:
		return fmt.Errorf("close producer: %w", closeErr)
	case de != nil || sum.Rejected > 0:
		failed := sum.Failed
		if de != nil {
			failed = int64(de.Count)
		}
		return &failedError{code: exitFailure, err: fmt.Errorf("%d records not delivered, %d rejected", failed, sum.Rejected)}
	case interrupted:
		return &failedError{code: exitFailure, err: fmt.Errorf("interrupted after %d lines; everything read was delivered", sum.Lines)}
	}
	return nil
}

func (c *cli) printSummary(format string, s produceSummary) {
	if format == "json" {
		b, _ := json.Marshal(s)
		fmt.Fprintf(c.stdout, "%s\n", b)
		return
	}
	fmt.Fprintf(c.stdout, "records %d (delivered %d) in %d Kinesis records, %s in %s (%.0f records/s, %.2f MB/s); throttled %d, retried %d, failed %d, rejected %d\n",
		s.Records, s.Delivered, s.KinesisRecords, humanBytes(s.Bytes), time.Duration(s.DurationSec*float64(time.Second)).Round(time.Millisecond),
		s.RecordsPerSec, s.MBPerSec, s.Throttled, s.Retried, s.Failed, s.Rejected)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// describeItem shows an undelivered record: the item when there is one,
// else its bytes, cut to a readable length.
func describeItem(item any, data []byte) string {
	var s string
	if item != nil {
		b, err := itemJSON(item)
		if err == nil {
			s = string(b)
		}
	}
	if s == "" {
		s = fmt.Sprintf("%q", data)
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// fieldKey returns the partition key from a JSON object's top-level field:
// a string as it is, any other value as its JSON text; "" when absent.
func fieldKey(line []byte, field string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return ""
	}
	v, ok := obj[field]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// openInput opens the input and returns its size when known (a regular
// file), or -1.
func (c *cli) openInput(cfg *config) (io.Reader, int64, func(), error) {
	path := cfg.str("input")
	if path == "-" || path == "" {
		size := int64(-1)
		if f, ok := c.stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				size = st.Size()
			}
		}
		return c.stdin, size, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, 0, nil, usagef("input file %s not found", path)
		}
		return nil, 0, nil, usagef("input: %v", err)
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress redraws one status line on a terminal until stopped. Its
// goroutine is started by startProgress and joined by stop.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(w io.Writer, start time.Time, size int64, in *countingReader, lines *atomic.Int64, stats func() batch.Stats) *progress {
	p := &progress{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		draw := func(final bool) {
			st := stats()
			el := time.Since(start).Seconds()
			rate := 0.0
			if el > 0 {
				rate = float64(st.RecordsDelivered) / el
			}
			line := fmt.Sprintf("records %d, delivered %d, %s, %.0f records/s, throttled %d, retried %d",
				st.RecordsPut, st.RecordsDelivered, humanBytes(st.BytesDelivered), rate, st.Throttled, st.Retried)
			if size > 0 {
				line += fmt.Sprintf(", %.0f%%", 100*float64(in.n.Load())/float64(size))
			}
			end := ""
			if final {
				end = "\n"
			}
			fmt.Fprintf(w, "\r\033[K%s%s", line, end)
		}
		for {
			select {
			case <-p.done:
				draw(true)
				return
			case <-tick.C:
				draw(false)
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
}
