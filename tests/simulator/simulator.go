package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

// Option configures a Simulator.
type Option func(*config) error

type config struct {
	clock      Clock
	client     kinesisapi.Client
	listenAddr string
	maxIters   int
}

// WithClock makes the limiters use c instead of the real time.
func WithClock(c Clock) Option {
	return func(o *config) error {
		if c == nil {
			return errors.New("simulator: WithClock: nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithUpstreamClient sets the client the simulator lists shards with. By
// default it builds one for the upstream endpoint with dummy credentials.
func WithUpstreamClient(c kinesisapi.Client) Option {
	return func(o *config) error {
		if c == nil {
			return errors.New("simulator: WithUpstreamClient: nil client")
		}
		o.client = c
		return nil
	}
}

// WithListenAddr sets the address the simulator listens on (default
// 127.0.0.1:0, a free loopback port).
func WithListenAddr(addr string) Option {
	return func(o *config) error {
		if addr == "" {
			return errors.New("simulator: WithListenAddr: empty address")
		}
		o.listenAddr = addr
		return nil
	}
}

// WithMaxIterators bounds how many shard iterators the simulator remembers
// (default 100,000); the oldest half is forgotten when the bound is reached.
func WithMaxIterators(n int) Option {
	return func(o *config) error {
		if n < 2 {
			return fmt.Errorf("simulator: WithMaxIterators(%d): want >= 2", n)
		}
		o.maxIters = n
		return nil
	}
}

// Simulator is the limiting proxy. Its methods are safe for concurrent use.
type Simulator struct {
	upstream *url.URL
	limits   Limits
	cfg      config
	http     *http.Client

	mu               sync.Mutex
	streams          map[string]*streamState
	iters            [2]map[string]shardRef // current and previous generation
	inject           []injection
	unknownIterators int64

	refreshMu sync.Mutex // one shard listing at a time

	srvMu    sync.Mutex
	srv      *http.Server
	ln       net.Listener
	endpoint string
	served   chan error
}

type shardRef struct{ stream, shard string }

type injection struct {
	n    int
	code string
}

type streamState struct {
	shardMap *kinesisapi.ShardMap // nil until listed
	stale    bool
	shards   map[string]*shardState
}

type shardState struct {
	writeRecords, writeBytes, readCalls, readBytes bucket
	st                                             ShardStats
}

// New returns a simulator for the Kinesis endpoint upstream (e.g. a local
// kinesalite at http://127.0.0.1:4567). Call Start to serve.
func New(upstream string, limits Limits, opts ...Option) (*Simulator, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("simulator: upstream endpoint %q: want an absolute http URL", upstream)
	}
	l, err := limits.validate()
	if err != nil {
		return nil, err
	}
	cfg := config{clock: realClock{}, listenAddr: "127.0.0.1:0", maxIters: 100_000}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.client == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{
			Region: "us-east-1", Endpoint: upstream, AccessKeyID: "simulator", SecretAccessKey: "simulator",
		})
		if err != nil {
			return nil, fmt.Errorf("simulator: upstream client: %w", err)
		}
		cfg.client = c
	}
	return &Simulator{
		upstream: u,
		limits:   l,
		cfg:      cfg,
		http:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		streams:  map[string]*streamState{},
		iters:    [2]map[string]shardRef{{}, {}},
	}, nil
}

// Start listens and serves in the background.
func (s *Simulator) Start() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return errors.New("simulator: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.listenAddr)
	if err != nil {
		return fmt.Errorf("simulator: listen on %s: %w", s.cfg.listenAddr, err)
	}
	s.ln = ln
	s.endpoint = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	return nil
}

// Endpoint is the simulator's URL, to be used as the Kinesis endpoint. It is
// empty until Start.
func (s *Simulator) Endpoint() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.endpoint
}

// Close stops serving and waits for the server to end.
func (s *Simulator) Close() error {
	s.srvMu.Lock()
	srv, served := s.srv, s.served
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.http.CloseIdleConnections()
	s.srvMu.Lock()
	s.srv = nil
	s.srvMu.Unlock()
	return err
}

// Start starts a simulator in front of upstream for a test and closes it
// when the test ends. It fails the test on error.
func Start(tb testing.TB, upstream string, limits Limits, opts ...Option) *Simulator {
	tb.Helper()
	s, err := New(upstream, limits, opts...)
	if err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	if err := s.Start(); err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("simulator close: %v", err)
		}
	})
	return s
}

// InjectPutFailure makes the next n written entries (PutRecords entries or
// PutRecord calls, on any stream) fail with the error code, e.g.
// "InternalFailure" or "ProvisionedThroughputExceededException", without
// being forwarded or charged to a limit. Injections queue up in call order.
func (s *Simulator) InjectPutFailure(n int, code string) {
	if n <= 0 {
		return
	}
	if code == "" {
		code = "InternalFailure"
	}
	s.mu.Lock()
	s.inject = append(s.inject, injection{n: n, code: code})
	s.mu.Unlock()
}

// takeInjection returns the code of the next injected failure, or "".
// s.mu must be held.
func (s *Simulator) takeInjection() string {
	for len(s.inject) > 0 {
		in := &s.inject[0]
		if in.n > 0 {
			in.n--
			code := in.code
			if in.n == 0 {
				s.inject = s.inject[1:]
			}
			return code
		}
		s.inject = s.inject[1:]
	}
	return ""
}

// ShardStats are the counts of one shard.
type ShardStats struct {
	ShardID string

	PutCalls        int64 // PutRecord and PutRecords calls with an entry for the shard
	AdmittedRecords int64 // entries the upstream stored
	AdmittedBytes   int64 // their data + partition key bytes
	RefusedRecords  int64 // entries refused with ProvisionedThroughputExceededException
	RefusedBytes    int64
	FailedRecords   int64 // entries failed by InjectPutFailure or by the upstream

	ReadCalls         int64 // GetRecords calls admitted
	ReadRecords       int64 // records they returned
	ReadBytes         int64 // data + partition key bytes they returned
	ThrottledReads    int64 // GetRecords calls refused
	ThrottledPutCalls int64 // PutRecord calls refused
	Mispredicted      int64 // entries the upstream stored on another shard than predicted
}

func (a *ShardStats) add(b ShardStats) {
	a.PutCalls += b.PutCalls
	a.AdmittedRecords += b.AdmittedRecords
	a.AdmittedBytes += b.AdmittedBytes
	a.RefusedRecords += b.RefusedRecords
	a.RefusedBytes += b.RefusedBytes
	a.FailedRecords += b.FailedRecords
	a.ReadCalls += b.ReadCalls
	a.ReadRecords += b.ReadRecords
	a.ReadBytes += b.ReadBytes
	a.ThrottledReads += b.ThrottledReads
	a.ThrottledPutCalls += b.ThrottledPutCalls
	a.Mispredicted += b.Mispredicted
}

// StreamStats are the counts of one stream: per shard (ordered by shard id)
// and their totals.
type StreamStats struct {
	Stream string
	Shards []ShardStats
	Total  ShardStats
}

// Shard returns the counts of one shard (zero when it saw no traffic).
func (s StreamStats) Shard(id string) ShardStats {
	for _, sh := range s.Shards {
		if sh.ShardID == id {
			return sh
		}
	}
	return ShardStats{ShardID: id}
}

// Stats returns the counts of a stream.
func (s *Simulator) Stats(stream string) StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := StreamStats{Stream: stream}
	st := s.streams[stream]
	if st == nil {
		return out
	}
	for id, sh := range st.shards {
		c := sh.st
		c.ShardID = id
		out.Shards = append(out.Shards, c)
		out.Total.add(c)
	}
	sort.Slice(out.Shards, func(i, j int) bool { return out.Shards[i].ShardID < out.Shards[j].ShardID })
	return out
}

// UnknownIterators counts GetRecords calls whose iterator the simulator had
// not seen (passed through without limits).
func (s *Simulator) UnknownIterators() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unknownIterators
}

// stream returns the state of a stream, creating it. s.mu must be held.
func (s *Simulator) stream(name string) *streamState {
	st := s.streams[name]
	if st == nil {
		st = &streamState{shards: map[string]*shardState{}}
		s.streams[name] = st
	}
	return st
}

// shard returns the state of a shard, creating it with full buckets.
// s.mu must be held.
func (s *Simulator) shard(stream, id string) *shardState {
	st := s.stream(stream)
	sh := st.shards[id]
	if sh == nil {
		now := s.cfg.clock.Now()
		l := s.limits
		sh = &shardState{
			writeRecords: newBucket(l.WriteRecordsPerSec, l.Burst, now),
			writeBytes:   newBucket(l.WriteBytesPerSec, l.Burst, now),
			readCalls:    newBucket(l.ReadCallsPerSec, l.Burst, now),
			readBytes:    newBucket(l.ReadBytesPerSec, l.Burst, now),
		}
		st.shards[id] = sh
	}
	return sh
}

// shardMap returns the stream's shard map, listing the shards upstream when
// the stream is unknown or marked stale.
func (s *Simulator) shardMap(ctx context.Context, stream string) (*kinesisapi.ShardMap, error) {
	s.mu.Lock()
	st := s.stream(stream)
	m, stale := st.shardMap, st.stale
	s.mu.Unlock()
	if m != nil && !stale {
		return m, nil
	}
	return s.refresh(ctx, stream, m)
}

// refresh lists the stream's shards upstream and replaces its shard map,
// unless another request already replaced seen while this one waited.
func (s *Simulator) refresh(ctx context.Context, stream string, seen *kinesisapi.ShardMap) (*kinesisapi.ShardMap, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.mu.Lock()
	st := s.stream(stream)
	cur, stale := st.shardMap, st.stale
	s.mu.Unlock()
	if cur != nil && cur != seen && !stale {
		return cur, nil
	}
	shards, err := kinesisapi.ListShards(ctx, s.cfg.client, stream)
	if err != nil {
		return nil, err
	}
	m := kinesisapi.NewShardMap(shards)
	s.mu.Lock()
	st.shardMap, st.stale = m, false
	s.mu.Unlock()
	return m, nil
}

// rememberIterator maps a shard iterator to its shard. s.mu must be held.
func (s *Simulator) rememberIterator(it string, ref shardRef) {
	if it == "" {
		return
	}
	if len(s.iters[0]) >= s.cfg.maxIters/2 {
		s.iters[1] = s.iters[0]
		s.iters[0] = make(map[string]shardRef)
	}
	s.iters[0][it] = ref
}

// iteratorShard returns the shard of a remembered iterator. s.mu must be held.
func (s *Simulator) iteratorShard(it string) (shardRef, bool) {
	if r, ok := s.iters[0][it]; ok {
		return r, true
	}
	r, ok := s.iters[1][it]
	return r, ok
}

// streamName returns the stream named by a request's StreamName or, failing
// that, the name at the end of its StreamARN.
func streamName(name, arn string) string {
	if name != "" {
		return name
	}
	if i := strings.LastIndex(arn, "stream/"); i >= 0 {
		rest := arn[i+len("stream/"):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	return ""
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// upstreamResponse is a buffered upstream answer.
type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

// hop-by-hop headers are not forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward sends a request with body to the upstream and buffers the answer.
func (s *Simulator) forward(ctx context.Context, r *http.Request, body []byte) (*upstreamResponse, error) {
	u := *s.upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Header.Del("Accept-Encoding")
	req.Header.Del("Content-Length")
	req.ContentLength = int64(len(body))
	res, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read upstream response: %w", err)
	}
	return &upstreamResponse{status: res.StatusCode, header: res.Header, body: b}, nil
}

// write sends a buffered response to the client.
func (u *upstreamResponse) write(w http.ResponseWriter) {
	for k, vs := range u.header {
		if k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(u.body)))
	w.WriteHeader(u.status)
	_, _ = w.Write(u.body)
}
