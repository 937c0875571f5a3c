package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shardwork/shardwork/tests/harness"
)

// workerBin is the worker binary built once for the whole package.
var workerBin string

// buildFlags are extra go build flags for the worker binary.
var buildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "worker-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	if os.Getenv("WORKER_TEST_RACE") == "1" {
		// The end-to-end tests then also look for data races in the
		// binary (about five times slower).
		buildFlags = append(buildFlags, "-race")
	}
	build := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", workerBin, "./cmd/worker")...)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build ./cmd/worker:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	harness.Main(m)
}

// result is one finished worker invocation.
type result struct {
	stdout, stderr string
	code           int
}

// baseEnv is the environment every invocation gets: the process's own minus
// anything that would point the worker elsewhere, plus dummy credentials.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SHARDWORK_") || strings.HasPrefix(k, "AWS_") || k == "REDIS_URL" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true")
}

// worker runs the binary to completion with extra environment variables and
// optional stdin.
func worker(t testing.TB, env []string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBin, args...)
	cmd.Env = append(baseEnv(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("worker %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// kinesisEnv points the worker at the test's kinesalite.
func kinesisEnv(e *harness.Env) []string {
	return []string{"AWS_ENDPOINT_URL_KINESIS=" + e.Endpoint}
}

// mustOK fails the test unless the run exited 0.
func mustOK(t testing.TB, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstderr:\n%s\nstdout:\n%.2000s", what, r.code, r.stderr, r.stdout)
	}
}
