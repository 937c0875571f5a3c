package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
)

// metrics is the worker's Prometheus registry: live counters of each
// pipeline's consumer and output producer (read at scrape time from their
// Stats), lease events, handler results and plugin call latency.
type metrics struct {
	reg *prometheus.Registry

	callSeconds *prometheus.HistogramVec
	callErrors  *prometheus.CounterVec
	results     *prometheus.CounterVec
	lagMs       *prometheus.GaugeVec
	ageMs       *prometheus.GaugeVec
	leaseEvents *prometheus.CounterVec

	mu        sync.Mutex
	pipelines []*pipeline
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.callSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "shardwork_plugin_call_seconds", Help: "Latency of handler plugin calls (one call per batch).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"pipeline"})
	m.callErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardwork_plugin_call_errors_total", Help: "Handler plugin calls that failed the whole batch.",
	}, []string{"pipeline"})
	m.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardwork_handler_results_total", Help: "Per-record handler verdicts.",
	}, []string{"pipeline", "status"})
	m.lagMs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shardwork_consumer_lag_ms", Help: "How far behind the tip of the shard the last read was (GetRecords MillisBehindLatest).",
	}, []string{"pipeline", "shard"})
	m.ageMs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shardwork_consumer_record_age_ms", Help: "Milliseconds between the newest handled record's arrival in Kinesis and its handling, per shard.",
	}, []string{"pipeline", "shard"})
	m.leaseEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardwork_lease_events_total", Help: "Leases acquired, released and lost.",
	}, []string{"pipeline", "event"})
	m.reg.MustRegister(m.callSeconds, m.callErrors, m.results, m.lagMs, m.ageMs, m.leaseEvents, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// add registers a built pipeline so its Stats are scraped.
func (m *metrics) add(p *pipeline) {
	m.mu.Lock()
	m.pipelines = append(m.pipelines, p)
	m.mu.Unlock()
}

// pipelineMetrics is one pipeline's view of the registry. A nil value
// records nothing (consume has no metrics).
type pipelineMetrics struct {
	m    *metrics
	name string
}

func (m *metrics) pipeline(name string) *pipelineMetrics { return &pipelineMetrics{m: m, name: name} }

func (pm *pipelineMetrics) observeCall(d time.Duration, err error) {
	if pm == nil {
		return
	}
	pm.m.callSeconds.WithLabelValues(pm.name).Observe(d.Seconds())
	if err != nil {
		pm.m.callErrors.WithLabelValues(pm.name).Inc()
	}
}

func (pm *pipelineMetrics) observeBatch(recs []records.Record, res []records.Result) {
	if pm == nil {
		return
	}
	for _, r := range res {
		pm.m.results.WithLabelValues(pm.name, r.Status.String()).Inc()
	}
	now := time.Now()
	newest := map[string]time.Time{}
	for _, r := range recs {
		if r.ArrivalTime.After(newest[r.ShardID]) {
			newest[r.ShardID] = r.ArrivalTime
		}
	}
	for shard, t := range newest {
		pm.m.ageMs.WithLabelValues(pm.name, shard).Set(float64(now.Sub(t).Milliseconds()))
	}
}

func (pm *pipelineMetrics) onLease(ev shards.LeaseEvent) {
	if pm == nil {
		return
	}
	event := "acquired"
	switch {
	case ev.Acquired:
	case errors.Is(ev.Err, checkpoint.ErrLeaseLost):
		event = "lost"
	default:
		event = "released"
	}
	pm.m.leaseEvents.WithLabelValues(pm.name, event).Inc()
	if !ev.Acquired {
		pm.m.lagMs.DeleteLabelValues(pm.name, ev.Shard)
		pm.m.ageMs.DeleteLabelValues(pm.name, ev.Shard)
	}
}

// The figures read from Stats at scrape time.
var (
	descConsumer = map[string]*prometheus.Desc{}
	descProducer = map[string]*prometheus.Desc{}
	descLeases   = prometheus.NewDesc("shardwork_leases_held", "Shard leases this worker holds now.", []string{"pipeline"}, nil)
)

func consumerDesc(name, help string) *prometheus.Desc {
	d := prometheus.NewDesc("shardwork_consumer_"+name, help, []string{"pipeline", "stream"}, nil)
	descConsumer[name] = d
	return d
}

func producerDesc(name, help string) *prometheus.Desc {
	d := prometheus.NewDesc("shardwork_producer_"+name, help, []string{"pipeline", "stream"}, nil)
	descProducer[name] = d
	return d
}

var (
	dGetRecords      = consumerDesc("get_records_calls_total", "GetRecords calls.")
	dConsThrottles   = consumerDesc("throttles_total", "GetRecords calls refused for throughput.")
	dConsBytes       = consumerDesc("bytes_total", "Bytes read (data plus partition keys of Kinesis records).")
	dConsKinesis     = consumerDesc("kinesis_records_total", "Kinesis records read.")
	dConsFetched     = consumerDesc("records_fetched_total", "User records after deaggregation.")
	dConsFinished    = consumerDesc("records_total", "User records finished (handled and checkpointable).")
	dDecodeErrors    = consumerDesc("decode_errors_total", "Records that could not be deaggregated or decoded.")
	dHandlerFailures = consumerDesc("handler_failures_total", "Records a handler failed.")
	dCheckpoints     = consumerDesc("checkpoints_total", "Checkpoint writes.")
	dLeasesTaken     = consumerDesc("leases_taken_total", "Leases taken.")
	dLeasesLost      = consumerDesc("leases_lost_total", "Leases lost to another worker.")

	dProdRecords   = producerDesc("records_total", "User records delivered to the output stream.")
	dProdBytes     = producerDesc("bytes_total", "Bytes delivered to the output stream.")
	dProdKinesis   = producerDesc("kinesis_records_total", "Kinesis records (aggregates) delivered.")
	dProdRequests  = producerDesc("requests_total", "PutRecords calls.")
	dProdThrottles = producerDesc("throttles_total", "Entries refused for throughput.")
	dProdRetries   = producerDesc("retries_total", "Entries sent again.")
	dProdFailures  = producerDesc("failures_total", "User records given up.")
	dProdQueue     = producerDesc("queue_depth", "Records accepted and not yet delivered or failed.")
)

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descConsumer {
		ch <- d
	}
	for _, d := range descProducer {
		ch <- d
	}
	ch <- descLeases
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ps := append([]*pipeline(nil), m.pipelines...)
	m.mu.Unlock()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range ps {
		st := p.consumer.Stats()
		l := []string{p.spec.Name, p.spec.Stream}
		counter(dGetRecords, st.GetRecordsCalls, l...)
		counter(dConsThrottles, st.Throttles, l...)
		counter(dConsBytes, st.BytesRead, l...)
		counter(dConsKinesis, st.KinesisRecords, l...)
		counter(dConsFetched, st.RecordsFetched, l...)
		counter(dConsFinished, st.RecordsFinished, l...)
		counter(dDecodeErrors, st.DecodeErrors, l...)
		counter(dHandlerFailures, st.HandlerFailures, l...)
		counter(dCheckpoints, st.Checkpoints, l...)
		counter(dLeasesTaken, st.LeasesTaken, l...)
		counter(dLeasesLost, st.LeasesLost, l...)
		ch <- prometheus.MustNewConstMetric(descLeases, prometheus.GaugeValue, float64(len(st.Shards)), p.spec.Name)
		if p.out != nil {
			ps := p.out.Stats()
			ol := []string{p.spec.Name, p.spec.OutputStream}
			counter(dProdRecords, ps.RecordsDelivered, ol...)
			counter(dProdBytes, ps.BytesDelivered, ol...)
			counter(dProdKinesis, ps.KinesisRecords, ol...)
			counter(dProdRequests, ps.Requests, ol...)
			counter(dProdThrottles, ps.Throttled, ol...)
			counter(dProdRetries, ps.Retried, ol...)
			counter(dProdFailures, ps.Failed, ol...)
			ch <- prometheus.MustNewConstMetric(dProdQueue, prometheus.GaugeValue, float64(ps.QueueDepth), ol...)
		}
	}
}

// lagClient is the consumer's Kinesis client with an eye on GetRecords: it
// follows each shard's iterator chain (GetShardIterator names the shard,
// every NextShardIterator continues it) to report MillisBehindLatest per
// shard. Safe for concurrent use.
type lagClient struct {
	kinesisapi.Client
	pm *pipelineMetrics

	mu      sync.Mutex
	shardOf map[string]string // iterator → shard
}

func newLagClient(c kinesisapi.Client, pm *pipelineMetrics) *lagClient {
	return &lagClient{Client: c, pm: pm, shardOf: map[string]string{}}
}

// maxTrackedIterators bounds the map against iterators the consumer
// abandoned (expired, or shards it stopped reading).
const maxTrackedIterators = 4096

func (c *lagClient) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	out, err := c.Client.GetShardIterator(ctx, in, opts...)
	if err == nil && out.ShardIterator != nil {
		c.mu.Lock()
		if len(c.shardOf) >= maxTrackedIterators {
			clear(c.shardOf)
		}
		c.shardOf[*out.ShardIterator] = aws.ToString(in.ShardId)
		c.mu.Unlock()
	}
	return out, err
}

func (c *lagClient) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := c.Client.GetRecords(ctx, in, opts...)
	if err != nil {
		return out, err // a retry reuses the same iterator
	}
	it := aws.ToString(in.ShardIterator)
	c.mu.Lock()
	shard, ok := c.shardOf[it]
	if ok {
		delete(c.shardOf, it)
		if out.NextShardIterator != nil {
			c.shardOf[*out.NextShardIterator] = shard
		}
	}
	c.mu.Unlock()
	if ok && out.MillisBehindLatest != nil {
		c.pm.m.lagMs.WithLabelValues(c.pm.name, shard).Set(float64(*out.MillisBehindLatest))
	}
	return out, err
}
