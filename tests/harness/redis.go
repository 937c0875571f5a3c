package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RedisServer is a Redis the tests can use: one that already answered at
// REDIS_URL (or 127.0.0.1:6379), or one the harness started.
type RedisServer struct {
	URL  string // redis://host:port/db
	Addr string // host:port

	cmd *exec.Cmd
}

// FindOrStartRedis returns the Redis at REDIS_URL (default
// redis://127.0.0.1:6379/0) when it answers PING; otherwise it starts
// redis-server on a free port when the binary is on PATH. With neither it
// returns an error that says how to get one.
func FindOrStartRedis(ctx context.Context) (*RedisServer, error) {
	raw := os.Getenv("REDIS_URL")
	if raw == "" {
		raw = "redis://127.0.0.1:6379/0"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %q: %w", raw, err)
	}
	addr := u.Host
	if !strings.Contains(addr, ":") {
		addr += ":6379"
	}
	pingErr := ping(ctx, addr)
	if pingErr == nil {
		return &RedisServer{URL: raw, Addr: addr}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("no Redis answers at %s (%v) and redis-server is not on PATH: "+
			"start a Redis and set REDIS_URL (e.g. redis://127.0.0.1:6379/0), or install one (apt-get install redis-server)", raw, pingErr)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		a := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if lastErr = ping(ctx, a); lastErr == nil {
				return &RedisServer{URL: "redis://" + a + "/0", Addr: a, cmd: cmd}, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			t := time.NewTimer(20 * time.Millisecond)
			<-t.C
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	return nil, fmt.Errorf("started redis-server but it never answered: %w", lastErr)
}

// Stop ends a Redis the harness started; one it found is left alone.
func (r *RedisServer) Stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	_ = r.cmd.Wait()
}

// ping sends a RESP PING and expects +PONG.
func ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New("unexpected reply to PING: " + strings.TrimSpace(line))
	}
	return nil
}
