package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the work failed (undelivered records, Kinesis errors)
	exitUsage   = 2 // bad flags, bad config, bad plugin, unknown processor, unreachable Redis
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err as one line on stderr and returns the exit status.
func report(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(stderr, "worker: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var fe *failedError
	if errors.As(err, &fe) && fe.code != 0 {
		return fe.code
	}
	return exitFailure
}

// usageError is a mistake in how the worker was invoked or configured: bad
// flags, an invalid config value, a missing or wrong plugin, an unknown
// processor, an unreachable Redis. It exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// failedError is a failure of the work itself, with its exit status.
type failedError struct {
	code int
	err  error
}

func (e *failedError) Error() string { return e.err.Error() }
func (e *failedError) Unwrap() error { return e.err }

var errHelp = errors.New("help requested")

// lookupEnv is how the worker reads its environment (os.LookupEnv in main;
// a map in tests).
type lookupEnv func(string) (string, bool)

// cli is one invocation: its streams and environment.
type cli struct {
	env    lookupEnv
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program: it parses args (without the program name) and
// runs the command until it finishes or ctx is cancelled.
func run(ctx context.Context, args []string, env lookupEnv, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.usage(stderr)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "produce":
		return c.produce(ctx, rest)
	case "consume":
		return c.consume(ctx, rest)
	case "run":
		return c.runWorker(ctx, rest)
	case "decode":
		return c.decode(ctx, rest)
	case "stream":
		return c.stream(ctx, rest)
	case "plugin":
		return c.plugin(ctx, rest)
	case "version", "--version", "-version":
		return c.version(rest)
	case "help", "-h", "-help", "--help":
		c.usage(stdout)
		return nil
	}
	c.usage(stderr)
	return usagef("unknown command %q", cmd)
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `usage: worker <command> [flags]

commands:
  produce         read lines from a file or stdin and put them into a stream
  consume         read a stream and print records as JSON lines, or run a handler plugin
  run             the long-running worker: pipelines from a config file
  decode          decode one raw record payload or a Lambda Kinesis event
  stream create   create a stream (waits until it is active)
  stream describe print a stream's summary and shards
  stream delete   delete a stream
  plugin check    check a .wasm plugin against the ABI
  plugin describe print a plugin's self-description
  plugin compile  fill the plugin compilation cache ahead of time
  version         print the version

Run 'worker <command> -h' for a command's flags. Every flag can also be set
with an environment variable SHARDWORK_<FLAG> (dashes as underscores) or a
key in the YAML file given with --config (dashes as underscores);
flags win over the environment, which wins over the file.
`)
}
