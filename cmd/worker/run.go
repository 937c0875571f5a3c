package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	optListen = &option{key: "listen", usage: "address for /healthz and /metrics (empty: no HTTP server)", def: ":9090"}
	optCheck  = &option{key: "check", usage: "check the config, processors and plugins, print the pipelines and exit", def: "false", kind: kBool}
)

func init() { registerKeys(optListen, optCheck) }

func (c *cli) runWorker(ctx context.Context, args []string) error {
	opts := append([]*option{optListen, optCheck, optProcessor, optOutputProc, optMaxBatch}, append(consumerOptions, producerOptions...)...)
	cfg, err := c.loadConfig("run", args, opts...)
	if err != nil {
		return err
	}
	if len(cfg.args) > 0 {
		return usagef("run: unexpected arguments %q", cfg.args)
	}
	if cfg.file == "" {
		return usagef("run: no config file: use --config worker.yaml (or $SHARDWORK_CONFIG)")
	}
	var specs []pipelineSpec
	if err := cfg.decodePipelines(&specs, pipelineKeys); err != nil {
		return err
	}
	if len(specs) == 0 {
		return usagef("config %s: no pipelines", cfg.file)
	}
	names := map[string]bool{}
	for i := range specs {
		s := &specs[i]
		s.where = fmt.Sprintf("pipelines[%d]", i)
		s.from = func(k string) string { return "config file " + cfg.file + " " + s.where + "." + k }
		if s.Name == "" {
			s.Name = s.Stream
		}
		if names[s.Name] {
			return usagef("config %s: %s: name %q is used twice", cfg.file, s.where, s.Name)
		}
		names[s.Name] = true
		if s.App == "" {
			s.App = s.Name
		}
		// Top-level settings are the pipelines' defaults.
		if s.Processor == "" {
			s.Processor = cfg.str("processor")
		}
		if s.OutputProcessor == "" {
			s.OutputProcessor = cfg.str("output_processor")
		}
		if s.Checkpointer == "" {
			s.Checkpointer = cfg.str("checkpointer")
		}
		if s.IteratorType == "" {
			s.IteratorType = cfg.str("iterator_type")
		}
		if s.AtTimestamp == "" {
			s.AtTimestamp = cfg.str("at_timestamp")
		}
		if s.MaxBatchSize == 0 {
			s.MaxBatchSize = cfg.int("max_batch_size")
		}
		if s.Handler == "" && s.OutputStream == "" {
			return usagef("config %s: %s: a pipeline needs a handler, an output_stream or both", cfg.file, s.where)
		}
	}
	log := c.newLogger(cfg)
	if cfg.bool("check") {
		return c.checkPipelines(ctx, cfg, specs, log)
	}
	cl, err := kinesisClient(ctx, cfg)
	if err != nil {
		return err
	}
	m := newMetrics()
	var pipes []*pipeline
	closeAll := func(ctx context.Context) error {
		var errs []error
		for _, p := range pipes {
			errs = append(errs, p.close(ctx))
		}
		return errors.Join(errs...)
	}
	for _, s := range specs {
		p, err := c.buildPipeline(ctx, cfg, cl, s, log, m)
		if err != nil {
			closeAll(context.WithoutCancel(ctx))
			return err
		}
		pipes = append(pipes, p)
		m.add(p)
	}

	h := &health{cl: cl, pipes: pipes}
	var srv *http.Server
	srvDone := make(chan error, 1)
	if addr := cfg.str("listen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(context.WithoutCancel(ctx))
			return badValue("listen", addr, cfg.from("listen"), err.Error())
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", h.serve)
		mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		log.Info("listening", "addr", ln.Addr().String())
		go func() { srvDone <- srv.Serve(ln) }()
	}

	// Each pipeline's Run gets a context that is cancelled only to abandon
	// in-flight work after the drain deadline; a signal closes the
	// consumers gracefully instead.
	runCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	var wg sync.WaitGroup
	runErrs := make([]error, len(pipes))
	failed := make(chan struct{}, len(pipes))
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.log.Info("pipeline started", "stream", p.spec.Stream, "app", p.spec.App,
				"processor", p.spec.Processor, "handler", p.spec.Handler, "output_stream", p.spec.OutputStream,
				"worker_id", p.store.WorkerID())
			err := p.consumer.Run(runCtx, p)
			if err != nil && !errors.Is(err, context.Canceled) {
				runErrs[i] = fmt.Errorf("pipeline %s: %w", p.spec.Name, err)
				failed <- struct{}{}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	var cause string
	select {
	case <-ctx.Done():
		cause = "signal"
	case <-failed:
		cause = "pipeline failed"
	case err := <-srvDone:
		cause = "http server: " + err.Error()
	case <-allDone:
		cause = "pipelines ended"
	}
	deadline := cfg.dur("shutdown_timeout")
	log.Info("shutting down", "cause", cause, "deadline", deadline)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
	defer cancel()
	h.setDraining()

	// Stop fetching, finish in-flight batches, write final checkpoints and
	// release leases, all pipelines at once.
	var closeErrs []error
	var cmu sync.Mutex
	var cwg sync.WaitGroup
	for _, p := range pipes {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := p.consumer.Close(dctx); err != nil {
				cmu.Lock()
				closeErrs = append(closeErrs, err)
				cmu.Unlock()
			}
		}()
	}
	cwg.Wait()
	select {
	case <-allDone:
	case <-dctx.Done():
		abandon()
		<-allDone
		closeErrs = append(closeErrs, fmt.Errorf("drain did not finish within %v; in-flight records will be read again", deadline))
	}
	// Flush outputs and unload plugins.
	closeErrs = append(closeErrs, closeAll(dctx))
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	err = errors.Join(append(runErrs, closeErrs...)...)
	for _, p := range pipes {
		st := p.consumer.Stats()
		p.log.Info("pipeline stopped", "records", st.RecordsFinished, "checkpoints", st.Checkpoints,
			"leases_taken", st.LeasesTaken, "leases_lost", st.LeasesLost)
	}
	if err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// health answers /healthz: ready when every pipeline holds at least one
// lease and Kinesis answers.
type health struct {
	cl    *kinesis.Client
	pipes []*pipeline

	mu       sync.Mutex
	checked  time.Time
	kinErr   error
	draining bool
}

func (h *health) setDraining() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
}

type healthReport struct {
	Ready     bool                `json:"ready"`
	Kinesis   string              `json:"kinesis"`
	Draining  bool                `json:"draining,omitempty"`
	Pipelines map[string][]string `json:"pipelines"` // pipeline → leased shards
}

func (h *health) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if time.Since(h.checked) > time.Second {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		_, err := h.cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(h.pipes[0].spec.Stream)})
		cancel()
		h.kinErr, h.checked = err, time.Now()
	}
	rep := healthReport{Kinesis: "ok", Draining: h.draining, Pipelines: map[string][]string{}}
	if h.kinErr != nil {
		rep.Kinesis = h.kinErr.Error()
	}
	h.mu.Unlock()
	rep.Ready = h.kinErr == nil && !rep.Draining
	for _, p := range h.pipes {
		held := p.consumer.Stats().Shards
		slices.Sort(held)
		rep.Pipelines[p.spec.Name] = held
		if len(held) == 0 {
			rep.Ready = false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !rep.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rep)
}

// checkPipelines resolves every pipeline's processors and loads its handler
// plugin (with its configuration), without touching Kinesis or Redis, and
// prints what would run.
func (c *cli) checkPipelines(ctx context.Context, cfg *config, specs []pipelineSpec, log *slog.Logger) error {
	for _, s := range specs {
		var closers []closer
		procName := s.Processor
		if procName == "" {
			procName = "json"
		}
		_, cl, err := c.processorByName(ctx, cfg, s.key("processor"), procName, s.fromOf("processor"), log)
		if err != nil {
			return err
		}
		closers = append(closers, cl)
		line := fmt.Sprintf("pipeline %s: stream %s (app %s, %s, checkpointer %s, from %s)", s.Name, s.Stream, s.App, procName,
			orDefault(s.Checkpointer, "memory"), orDefault(s.IteratorType, "TRIM_HORIZON"))
		if s.Handler != "" {
			hcfg, err := handlerConfig(&s)
			if err != nil {
				return err
			}
			_, cl, err := c.loadHandler(ctx, cfg, s.key("handler"), s.Handler, s.fromOf("handler"), hcfg, log)
			if err != nil {
				return err
			}
			closers = append(closers, cl)
			line += " -> handler " + s.Handler
		}
		if s.OutputStream != "" {
			oname, ofrom := s.OutputProcessor, s.fromOf("output_processor")
			if oname == "" {
				oname, ofrom = procName, s.fromOf("processor")
			}
			_, cl, err := c.processorByName(ctx, cfg, s.key("output_processor"), oname, ofrom, log)
			if err != nil {
				return err
			}
			closers = append(closers, cl)
			line += fmt.Sprintf(" -> stream %s (%s)", s.OutputStream, oname)
		}
		for _, cl := range closers {
			cl(ctx)
		}
		fmt.Fprintln(c.stdout, line)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
