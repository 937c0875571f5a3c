package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardwork/shardwork/core/records"
)

// Handler names: the function's Handler setting, which the runtime passes to
// the bootstrap as _HANDLER.
const (
	handlerConsumer = "consumer"
	handlerProducer = "producer"
)

// knownHandlers lists every Handler value the bootstrap accepts.
var knownHandlers = []string{handlerConsumer, handlerProducer}

// Built-in consumer handlers (SHARDWORK_BUILTIN_HANDLER).
const (
	builtinLog     = "log"
	builtinForward = "forward"
	builtinDiscard = "discard"
)

var builtinHandlers = []string{builtinLog, builtinForward, builtinDiscard}

// errInvalidConfig is wrapped by every configuration error; the message names
// the environment variable and its value.
var errInvalidConfig = errors.New("invalid configuration")

// config is the function's configuration, read once at cold start from the
// environment (see doc.go for the variables).
type config struct {
	handler string // consumer | producer

	processor     string // native processor name
	handlerPlugin string // consumer: record-handler plugin path (absolute)
	// handlerPluginConfig is the handler plugin's init configuration (JSON).
	handlerPluginConfig []byte
	// pluginTrusted runs plugins without per-call deadlines (faster; the
	// function's own timeout still ends a guest that never returns).
	pluginTrusted    bool
	serializerPlugin string // replaces the processor's serializer
	aggregatorPlugin string // replaces the processor's aggregator
	builtin          string // consumer: built-in handler when no plugin
	skipUndecodable  bool   // consumer: skip and count instead of failing

	outputStream string // consumer: where emitted records go ("" = none)
	stream       string // producer: target stream

	partitionKeyField string // producer: JSON field holding the partition key
	putAttempts       int    // PutRecords attempts per record
	flushTimeout      time.Duration

	// cacheDir is the plugin compilation cache to load from. shippedCache is
	// the precompiled one inside the package when it exists.
	cacheDir     string
	shippedCache string

	logLevel slog.Level
}

func invalid(name, value, why string) error {
	return fmt.Errorf("%w: %s=%q: %s", errInvalidConfig, name, value, why)
}

// loadConfig reads the configuration from getenv and validates it.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		handler:           strings.TrimSpace(getenv("_HANDLER")),
		processor:         getenv("SHARDWORK_PROCESSOR"),
		builtin:           getenv("SHARDWORK_BUILTIN_HANDLER"),
		outputStream:      getenv("SHARDWORK_OUTPUT_STREAM"),
		stream:            getenv("SHARDWORK_STREAM"),
		partitionKeyField: getenv("SHARDWORK_PARTITION_KEY_FIELD"),
		putAttempts:       5,
		flushTimeout:      0,
	}
	if !slices.Contains(knownHandlers, c.handler) {
		return c, invalid("_HANDLER", c.handler, "the function's Handler must be one of "+strings.Join(knownHandlers, ", "))
	}
	if c.processor == "" {
		c.processor = records.NameKPLJSON
	}
	if _, err := records.ByName(c.processor); err != nil {
		return c, invalid("SHARDWORK_PROCESSOR", c.processor, "one of "+strings.Join(records.Names(), ", "))
	}
	root := taskRoot(getenv)
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"SHARDWORK_HANDLER_PLUGIN", &c.handlerPlugin},
		{"SHARDWORK_SERIALIZER_PLUGIN", &c.serializerPlugin},
		{"SHARDWORK_AGGREGATOR_PLUGIN", &c.aggregatorPlugin},
	} {
		v := getenv(p.name)
		if v == "" {
			continue
		}
		if !filepath.IsAbs(v) {
			v = filepath.Join(root, v)
		}
		if _, err := os.Stat(v); err != nil {
			return c, invalid(p.name, getenv(p.name), fmt.Sprintf("plugin file: %v", err))
		}
		*p.dst = v
	}
	if v := getenv("SHARDWORK_HANDLER_PLUGIN_CONFIG"); v != "" {
		if !json.Valid([]byte(v)) {
			return c, invalid("SHARDWORK_HANDLER_PLUGIN_CONFIG", v, "not valid JSON")
		}
		c.handlerPluginConfig = []byte(v)
	}
	switch v := getenv("SHARDWORK_PLUGIN_TRUSTED"); v {
	case "", "false":
	case "true":
		c.pluginTrusted = true
	default:
		return c, invalid("SHARDWORK_PLUGIN_TRUSTED", v, "true or false")
	}
	if c.builtin == "" {
		c.builtin = builtinLog
	}
	if !slices.Contains(builtinHandlers, c.builtin) {
		return c, invalid("SHARDWORK_BUILTIN_HANDLER", c.builtin, "one of "+strings.Join(builtinHandlers, ", "))
	}
	if c.handler == handlerConsumer && c.handlerPlugin == "" && c.builtin == builtinForward && c.outputStream == "" {
		return c, invalid("SHARDWORK_BUILTIN_HANDLER", c.builtin, "forward needs SHARDWORK_OUTPUT_STREAM")
	}
	switch v := getenv("SHARDWORK_ON_DECODE_ERROR"); v {
	case "", "fail":
	case "skip":
		c.skipUndecodable = true
	default:
		return c, invalid("SHARDWORK_ON_DECODE_ERROR", v, "fail or skip")
	}
	if c.handler == handlerProducer && c.stream == "" {
		return c, invalid("SHARDWORK_STREAM", "", "the producer needs the name of the stream to write to")
	}
	if v := getenv("SHARDWORK_PUT_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, invalid("SHARDWORK_PUT_ATTEMPTS", v, "a whole number from 1 to 100")
		}
		c.putAttempts = n
	}
	if v := getenv("SHARDWORK_FLUSH_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, invalid("SHARDWORK_FLUSH_TIMEOUT", v, "a positive duration such as 10s")
		}
		c.flushTimeout = d
	}
	switch v := strings.ToLower(getenv("SHARDWORK_LOG_LEVEL")); v {
	case "", "info":
		c.logLevel = slog.LevelInfo
	case "debug":
		c.logLevel = slog.LevelDebug
	case "warn":
		c.logLevel = slog.LevelWarn
	case "error":
		c.logLevel = slog.LevelError
	default:
		return c, invalid("SHARDWORK_LOG_LEVEL", v, "debug, info, warn or error")
	}
	c.shippedCache = filepath.Join(root, "plugin-cache")
	if fi, err := os.Stat(c.shippedCache); err != nil || !fi.IsDir() {
		c.shippedCache = ""
	}
	c.cacheDir = getenv("SHARDWORK_PLUGIN_CACHE")
	if c.cacheDir == "" {
		c.cacheDir = c.shippedCache
	}
	if c.cacheDir == "" {
		c.cacheDir = filepath.Join(os.TempDir(), "shardwork-plugin-cache")
	}
	return c, nil
}

// taskRoot is where the deployment package is unpacked: LAMBDA_TASK_ROOT on
// Lambda, else the directory holding the bootstrap (as under the runtime
// interface emulator).
func taskRoot(getenv func(string) string) string {
	if r := getenv("LAMBDA_TASK_ROOT"); r != "" {
		return r
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe)
	}
	return "."
}

func (c config) usesPlugins() bool {
	return c.handlerPlugin != "" || c.serializerPlugin != "" || c.aggregatorPlugin != ""
}
