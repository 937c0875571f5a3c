package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RIEModule is the pinned AWS Lambda runtime interface emulator (the one
// `sam local` runs inside its containers), installed with go install.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

var rieInstall sync.Mutex

// RIEBin returns the path of aws-lambda-rie in the module's build/tools,
// installing it with `go install` (through the Go module proxy) when it is
// missing.
func RIEBin(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "build", "tools")
	bin := filepath.Join(dir, "aws-lambda-rie")
	rieInstall.Lock()
	defer rieInstall.Unlock()
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("aws-lambda-rie is not installed and go is not on PATH to install it")
	}
	// Installed into a private directory and renamed into place, so that
	// test binaries installing it at the same time never see half a file.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goBin, "install", RIEModule)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install the Lambda runtime interface emulator (go install %s): %w\n%s", RIEModule, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), bin); err != nil {
		return "", fmt.Errorf("go install %s: %w", RIEModule, err)
	}
	return bin, nil
}

// BuildBootstrap builds the Lambda bootstrap (./cmd/lambda) for this
// machine, as `make lambda` does (CGO_ENABLED=0, -tags lambda.norpc), into
// dir/bootstrap and returns its path.
func BuildBootstrap(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, "./cmd/lambda")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the lambda bootstrap: %w\n%s", err, b)
	}
	return out, nil
}

// Report is one REPORT line of the emulator: what one invocation took.
type Report struct {
	RequestID      string
	Duration       time.Duration
	BilledDuration time.Duration
	// InitDuration is the cold start (only on the first invocation of a
	// fresh runtime; Cold tells whether it was there): the time from
	// starting the bootstrap until it asked for its first event. The
	// emulator's REPORT line carries an "Init Duration" that only times the
	// start of the process (the runtime initialises asynchronously, and that
	// time lands in the first Duration), so the value is taken from the
	// emulator's "INIT REPORT(durationMs: ...)" log line when there is one.
	InitDuration time.Duration
	Cold         bool
}

var initReportRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

var (
	reportRE   = regexp.MustCompile(`^REPORT RequestId: (\S+)`)
	durationRE = regexp.MustCompile(`(?:^|\t)(Init Duration|Duration|Billed Duration): ([0-9.]+) ms`)
)

// ParseReport parses an emulator REPORT line, as printed after every
// invocation:
//
//	REPORT RequestId: ID\tInit Duration: 12.34 ms\tDuration: 5.67 ms\tBilled Duration: 6 ms\t...
func ParseReport(line string) (Report, bool) {
	m := reportRE.FindStringSubmatch(line)
	if m == nil {
		return Report{}, false
	}
	r := Report{RequestID: m[1]}
	seen := false
	for _, d := range durationRE.FindAllStringSubmatch(line, -1) {
		ms, err := strconv.ParseFloat(d[2], 64)
		if err != nil {
			return Report{}, false
		}
		v := time.Duration(ms * float64(time.Millisecond))
		switch d[1] {
		case "Init Duration":
			r.InitDuration, r.Cold = v, true
		case "Duration":
			r.Duration, seen = v, true
		case "Billed Duration":
			r.BilledDuration = v
		}
	}
	if !seen {
		return Report{}, false
	}
	return r, true
}

// RIE is a running runtime interface emulator serving one bootstrap.
type RIE struct {
	// URL is the invocation endpoint:
	// http://127.0.0.1:PORT/2015-03-31/functions/function/invocations
	URL string

	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	log     bytes.Buffer
	reports []Report
	initMs  float64       // from the last INIT REPORT line, until its REPORT
	changed chan struct{} // closed and replaced when a line arrives
}

// RIEConfig says what the emulator runs.
type RIEConfig struct {
	Bootstrap string   // the executable
	Handler   string   // the function's Handler (_HANDLER)
	Env       []string // KEY=VALUE for the function, on top of PATH, HOME and TMPDIR
	Timeout   time.Duration
}

// StartRIE starts aws-lambda-rie on free loopback ports running
// cfg.Bootstrap, and waits until it accepts invocations. The function is
// initialised on the first invocation, as Lambda does. Stop it with Stop.
func StartRIE(ctx context.Context, cfg RIEConfig) (*RIE, error) {
	bin, err := RIEBin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		r, err := startRIE(ctx, bin, cfg)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("start aws-lambda-rie: %w", lastErr)
}

func startRIE(ctx context.Context, bin string, cfg RIEConfig) (*RIE, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort),
		cfg.Bootstrap)
	cmd.Dir = filepath.Dir(cfg.Bootstrap)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	if cfg.Handler != "" {
		env = append(env, "_HANDLER="+cfg.Handler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	env = append(env, fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%d", int(timeout.Seconds())))
	cmd.Env = append(env, cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	r := &RIE{
		URL:     "http://" + addr + "/2015-03-31/functions/function/invocations",
		cmd:     cmd,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	go func() { // owned by r: ends when the process has exited
		_ = cmd.Wait()
		pw.Close()
	}()
	go func() { // owned by r: reads the output until the pipe closes
		defer close(r.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			if r.log.Len() < 8<<20 {
				r.log.WriteString(line)
				r.log.WriteByte('\n')
			}
			if m := initReportRE.FindStringSubmatch(line); m != nil {
				r.initMs, _ = strconv.ParseFloat(m[1], 64)
			}
			if rep, ok := ParseReport(line); ok {
				if r.initMs > 0 {
					rep.InitDuration, rep.Cold = time.Duration(r.initMs*float64(time.Millisecond)), true
					r.initMs = 0
				}
				r.reports = append(r.reports, rep)
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := waitTCP(ctx, addr, 15*time.Second); err != nil {
		r.Stop()
		return nil, fmt.Errorf("%w\n%s", err, r.Output())
	}
	return r, nil
}

// InvokeError is an invocation the emulator answered with a status other
// than 200 (for example 502 when the bootstrap exits during init).
type InvokeError struct {
	Status int
	Body   string
}

func (e *InvokeError) Error() string {
	return fmt.Sprintf("invocation answered %d: %s", e.Status, e.Body)
}

// Invoke POSTs payload as one invocation and returns the function's
// response (a function error is a 200 whose body holds errorMessage and
// errorType, as Lambda's Invoke API answers).
func (r *RIE) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w\nemulator output:\n%s", err, r.tail())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, &InvokeError{Status: resp.StatusCode, Body: string(body)}
	}
	return body, nil
}

// Reports returns the REPORT lines seen so far, in order.
func (r *RIE) Reports() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Report(nil), r.reports...)
}

// WaitReports waits until at least n REPORT lines have been printed (the
// emulator prints one before it answers an invocation; this waits for the
// output reader to catch up) and returns them.
func (r *RIE) WaitReports(ctx context.Context, n int) ([]Report, error) {
	for {
		r.mu.Lock()
		if len(r.reports) >= n {
			out := append([]Report(nil), r.reports...)
			r.mu.Unlock()
			return out, nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.done:
			r.mu.Lock()
			got := len(r.reports)
			r.mu.Unlock()
			if got >= n {
				continue
			}
			return nil, fmt.Errorf("the emulator exited after %d REPORT lines, want %d:\n%s", got, n, r.tail())
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for REPORT line %d: %w\n%s", n, ctx.Err(), r.tail())
		}
	}
}

// WaitOutput waits until the output holds s (the emulator's and the
// function's lines reach it through a pipe, a moment after the invocation
// that printed them has answered).
func (r *RIE) WaitOutput(ctx context.Context, s string) error {
	for {
		r.mu.Lock()
		found := bytes.Contains(r.log.Bytes(), []byte(s))
		ch := r.changed
		r.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-r.done:
			if strings.Contains(r.Output(), s) {
				return nil
			}
			return fmt.Errorf("the emulator exited without printing %q:\n%s", s, r.tail())
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in the emulator output: %w\n%s", s, ctx.Err(), r.tail())
		}
	}
}

// Output is everything the emulator and the function printed so far.
func (r *RIE) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func (r *RIE) tail() string {
	s := r.Output()
	if len(s) > 8<<10 {
		s = "..." + s[len(s)-8<<10:]
	}
	return strings.TrimSpace(s)
}

// Stop ends the emulator and the function it runs, and waits for them.
func (r *RIE) Stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}
