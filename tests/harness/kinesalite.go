package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kinesalite is a running local Kinesis (kinesalite) process.
type Kinesalite struct {
	Endpoint string // http://127.0.0.1:PORT
	Port     int

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	log  strings.Builder // the process's output, for failure messages
}

// ModuleRoot finds the directory holding the module's go.mod, starting from
// the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/shardwork/shardwork") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the shardwork module root (go.mod) above the working directory")
		}
		dir = parent
	}
}

// KinesaliteBin returns the path of the pinned kinesalite, installing it
// with `npm ci` from the committed lock file when it is missing.
func KinesaliteBin(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "tests", "kinesalite")
	bin := filepath.Join(dir, "node_modules", ".bin", "kinesalite")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errors.New("kinesalite is not installed and npm is not on PATH: install Node.js and npm, then run `make deps`")
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("npm ci did not install kinesalite at %s", bin)
	}
	return bin, nil
}

var listeningRE = regexp.MustCompile(`Listening at https?://.*:(\d+)`)

// StartKinesalite starts kinesalite on a free loopback port, with streams
// that become ACTIVE at once, and waits until it answers. Stop it with Stop.
func StartKinesalite(ctx context.Context) (*Kinesalite, error) {
	bin, err := KinesaliteBin(ctx)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		k, err := startKinesaliteOn(ctx, bin, port)
		if err == nil {
			return k, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("start kinesalite: %w", lastErr)
}

func startKinesaliteOn(ctx context.Context, bin string, port int) (*Kinesalite, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH: install Node.js to run kinesalite")
	}
	keepalive := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(bin))), "keepalive.js")
	cmd := exec.Command(node, "--require", keepalive, bin,
		"--port", strconv.Itoa(port),
		"--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0",
		"--shardLimit", "10000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	done := make(chan struct{})
	if err := startOnLockedThread(cmd, done); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	k := &Kinesalite{Port: port, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: done}
	ready := make(chan struct{})
	go func() { // owned by k: ends when the process's output closes
		sc := bufio.NewScanner(stdout)
		signaled := false
		for sc.Scan() {
			line := sc.Text()
			k.mu.Lock()
			if k.log.Len() < 64<<10 {
				k.log.WriteString(line + "\n")
			}
			k.mu.Unlock()
			if !signaled && listeningRE.MatchString(line) {
				signaled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(k.done)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
	case <-k.done:
		return nil, fmt.Errorf("kinesalite on port %d exited: %s", port, k.Output())
	case <-timer.C:
		k.Stop()
		return nil, fmt.Errorf("kinesalite on port %d did not start within 30s: %s", port, k.Output())
	case <-ctx.Done():
		k.Stop()
		return nil, ctx.Err()
	}
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// startOnLockedThread starts cmd from an OS thread that stays alive until
// the process exits. Pdeathsig is tied to the thread that forked the child,
// not to the test process, and the Go runtime may end an idle thread: a
// child started from an ordinary goroutine can be killed in mid-test.
func startOnLockedThread(cmd *exec.Cmd, exited <-chan struct{}) error {
	started := make(chan error, 1)
	go func() { // owns the locked thread until the process exits
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err != nil {
			runtime.UnlockOSThread()
			return
		}
		<-exited
		// The thread is not unlocked: the goroutine exits locked, so the
		// runtime retires the thread instead of reusing it.
	}()
	return <-started
}

// Exited reports whether the process has ended.
func (k *Kinesalite) Exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// Output is what the process printed so far.
func (k *Kinesalite) Output() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.log.String()
}

// Stop ends the process (and its children) and waits for it.
func (k *Kinesalite) Stop() {
	if k == nil || k.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %w", addr, limit, err)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
