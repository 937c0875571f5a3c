package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// kind is how an option's value is parsed and validated.
type kind int

const (
	kString kind = iota
	kInt
	kDuration
	kBool
	kEnum
	kTime
)

// option is one configuration setting: its key in the YAML file, its flag,
// its environment variables (SHARDWORK_<KEY> first) and its default.
type option struct {
	key   string // YAML key; the flag is the key with dashes
	usage string
	def   string
	kind  kind
	enum  []string
	// env lists extra variables read after SHARDWORK_<KEY>, e.g. AWS_REGION.
	env []string
	// min is the smallest accepted value for kInt and kDuration.
	min int64
}

func (o *option) flagName() string { return strings.ReplaceAll(o.key, "_", "-") }
func (o *option) envNames() []string {
	return append([]string{"SHARDWORK_" + strings.ToUpper(o.key)}, o.env...)
}

// The options every command shares.
var globalOptions = []*option{
	{key: "config", usage: "YAML config file (keys are the flag names with underscores)"},
	{key: "region", usage: "AWS region (default: the SDK chain)", env: []string{"AWS_REGION", "AWS_DEFAULT_REGION"}},
	{key: "profile", usage: "AWS shared config profile", env: []string{"AWS_PROFILE"}},
	{key: "endpoint", usage: "Kinesis endpoint URL, e.g. a local kinesalite", env: []string{"AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"}},
	{key: "log_level", usage: "log level: debug, info, warn or error", def: "info", kind: kEnum, enum: []string{"debug", "info", "warn", "error"}},
	{key: "log_format", usage: "log format: auto (text on a terminal, JSON otherwise), text or json", def: "auto", kind: kEnum, enum: []string{"auto", "text", "json"}},
}

// Options shared by several commands.
var (
	optStream       = &option{key: "stream", usage: "stream name"}
	optProcessor    = &option{key: "processor", usage: "processor: " + strings.Join(processorNames, ", ") + " or wasm:PATH", def: "json"}
	optInput        = &option{key: "input", usage: "input file, - for stdin", def: "-"}
	optShards       = &option{key: "shards", usage: "shard count for a created stream", def: "1", kind: kInt, min: 1}
	optRedisURL     = &option{key: "redis_url", usage: "Redis URL for the redis checkpointer", def: "redis://127.0.0.1:6379/0", env: []string{"REDIS_URL"}}
	optCheckpointer = &option{key: "checkpointer", usage: "checkpoint store: memory, redis (uses redis_url) or a redis:// URL", def: "memory"}
	optApp          = &option{key: "app", usage: "application name: leases and checkpoints are kept per (app, stream)", def: "shardwork-worker"}
	optIterator     = &option{key: "iterator_type", usage: "where a shard without a checkpoint starts: TRIM_HORIZON, LATEST or AT_TIMESTAMP", def: "TRIM_HORIZON", kind: kEnum, enum: []string{"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"}}
	optAtTimestamp  = &option{key: "at_timestamp", usage: "start time for AT_TIMESTAMP (RFC 3339 or Unix seconds); implies AT_TIMESTAMP", kind: kTime}
	optCacheDir     = &option{key: "plugin_cache_dir", usage: "plugin compilation cache directory", def: defaultCacheDir()}
	optCallTimeout  = &option{key: "plugin_call_timeout", usage: "deadline of one plugin call (one batch) in sandboxed mode (default 5s)", kind: kDuration, min: int64(time.Millisecond)}
	optTrusted      = &option{key: "plugin_trusted", usage: "run plugins without the per-call deadline (only for vetted plugins: faster, but a runaway plugin cannot be stopped)", def: "false", kind: kBool}
	optMeta         = &option{key: "meta", usage: "print metadata (shard, sequence, sub-sequence, partition key, arrival time) with each record", def: "false", kind: kBool}
	optHeartbeat    = &option{key: "heartbeat_frequency", usage: "how often leases are renewed", def: "", kind: kDuration, min: int64(time.Millisecond)}
	optSession      = &option{key: "session_timeout", usage: "a lease not renewed for this long may be taken over", def: "", kind: kDuration, min: int64(time.Millisecond)}
)

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return d + "/shardwork/plugins"
	}
	return os.TempDir() + "/shardwork-plugins"
}

// setting is a resolved value and where it came from.
type setting struct {
	value string
	from  string // "flag --x", "env X", "config file F", "default"
	set   bool   // false when only the default applies
}

// config is a command's resolved options. Values were validated when it was
// built, so the typed getters cannot fail.
type config struct {
	vals     map[string]setting
	file     string
	fileRoot *yaml.Node // the YAML document's root mapping, nil without a file
	args     []string   // positional arguments
}

// flagValue collects a flag's value and whether it was given.
type flagValue struct {
	opt  *option
	val  string
	seen bool
}

func (f *flagValue) String() string     { return f.val }
func (f *flagValue) Set(s string) error { f.val, f.seen = s, true; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.opt.kind == kBool }

// loadConfig parses args for a command that accepts opts (plus the global
// options), reads the environment and the optional YAML file, and validates
// every value. Flags win over the environment, which wins over the file.
// Positional arguments may come before, between or after flags.
func (c *cli) loadConfig(name string, args []string, opts ...*option) (*config, error) {
	all := append(slices.Clone(globalOptions), opts...)
	fs := flag.NewFlagSet("worker "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	flags := map[string]*flagValue{}
	for _, o := range all {
		fv := &flagValue{opt: o}
		flags[o.key] = fv
		usage := o.usage
		if ev := o.envNames(); len(ev) > 0 {
			usage += " [$" + strings.Join(ev, ", $") + "]"
		}
		fs.Var(fv, o.flagName(), usage)
		if o.def != "" && o.kind != kBool {
			fv.val = o.def
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}

	cfg := &config{vals: map[string]setting{}, args: positional}
	// The config file's own location: flag, then env.
	path, pathFrom := "", ""
	if fv := flags["config"]; fv.seen {
		path, pathFrom = fv.val, "flag --config"
	} else if v, ok := c.env("SHARDWORK_CONFIG"); ok && v != "" {
		path, pathFrom = v, "env SHARDWORK_CONFIG"
	}
	var fileVals map[string]string
	if path != "" {
		root, vals, err := readConfigFile(path, all)
		if err != nil {
			if os.IsNotExist(errors.Unwrap(err)) {
				return nil, usagef("config %q (from %s): file not found", path, pathFrom)
			}
			return nil, &usageError{err}
		}
		cfg.file, cfg.fileRoot, fileVals = path, root, vals
	}

	for _, o := range all {
		s := setting{value: o.def, from: "default"}
		if v, ok := fileVals[o.key]; ok {
			s = setting{value: v, from: "config file " + path + " key " + o.key, set: true}
		}
		for _, ev := range slices.Backward(o.envNames()) {
			if v, ok := c.env(ev); ok && v != "" {
				s = setting{value: v, from: "env " + ev, set: true}
			}
		}
		if fv := flags[o.key]; fv.seen {
			s = setting{value: fv.val, from: "flag --" + o.flagName(), set: true}
		}
		if o.kind == kBool && s.value == "" {
			s.value = "false"
		}
		if err := validate(o, s); err != nil {
			return nil, err
		}
		cfg.vals[o.key] = s
	}
	return cfg, nil
}

// validate checks one value against its option's kind.
func validate(o *option, s setting) error {
	if s.value == "" {
		return nil
	}
	bad := func(why string) error {
		return usagef("invalid config: %s = %q (from %s): %s", o.key, s.value, s.from, why)
	}
	switch o.kind {
	case kInt:
		n, err := strconv.ParseInt(s.value, 10, 64)
		if err != nil {
			return bad("not an integer")
		}
		if n < o.min {
			return bad(fmt.Sprintf("must be at least %d", o.min))
		}
	case kDuration:
		d, err := time.ParseDuration(s.value)
		if err != nil {
			return bad("not a duration (e.g. 500ms, 30s, 2m)")
		}
		if int64(d) < o.min {
			return bad(fmt.Sprintf("must be at least %v", time.Duration(o.min)))
		}
	case kBool:
		if _, err := strconv.ParseBool(s.value); err != nil {
			return bad("not a boolean (true or false)")
		}
	case kEnum:
		if !slices.Contains(o.enum, s.value) {
			return bad("must be one of " + strings.Join(o.enum, ", "))
		}
	case kTime:
		if _, err := parseTime(s.value); err != nil {
			return bad("not a time (RFC 3339, e.g. 2026-01-02T15:04:05Z, or Unix seconds)")
		}
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// readConfigFile reads the YAML file: top-level scalar keys must be known
// options; "pipelines" is kept for the run command.
func readConfigFile(path string, known []*option) (*yaml.Node, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("config %s: %s", path, oneLine(err.Error()))
	}
	vals := map[string]string{}
	if len(doc.Content) == 0 {
		return nil, vals, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("config %s: the top level must be a mapping of keys to values", path)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "pipelines" {
			continue
		}
		if !slices.ContainsFunc(allOptionKeys, func(s string) bool { return s == k.Value }) {
			return nil, nil, fmt.Errorf("config %s line %d: unknown key %q", path, k.Line, k.Value)
		}
		if k.Value == "config" {
			return nil, nil, fmt.Errorf("config %s line %d: key \"config\" cannot be set in a config file", path, k.Line)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, nil, fmt.Errorf("config %s line %d: key %q must be a single value", path, k.Line, k.Value)
		}
		if slices.ContainsFunc(known, func(o *option) bool { return o.key == k.Value }) {
			vals[k.Value] = v.Value
		}
	}
	return root, vals, nil
}

// allOptionKeys lists every key any command accepts, so a config file shared
// by several commands is not rejected for keys another command uses.
var allOptionKeys []string

func registerKeys(opts ...*option) {
	for _, o := range opts {
		if !slices.Contains(allOptionKeys, o.key) {
			allOptionKeys = append(allOptionKeys, o.key)
		}
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func (c *config) str(key string) string { return c.vals[key].value }
func (c *config) isSet(key string) bool { return c.vals[key].set }
func (c *config) from(key string) string {
	return c.vals[key].from
}

func (c *config) int(key string) int {
	n, _ := strconv.Atoi(c.vals[key].value)
	return n
}

func (c *config) dur(key string) time.Duration {
	d, _ := time.ParseDuration(c.vals[key].value)
	return d
}

func (c *config) bool(key string) bool {
	b, _ := strconv.ParseBool(c.vals[key].value)
	return b
}

func (c *config) time(key string) time.Time {
	t, _ := parseTime(c.vals[key].value)
	return t
}

// invalid reports a bad value of key found after loading (e.g. an unknown
// processor), naming the key, the value and where it came from.
func (c *config) invalid(key, why string) error {
	s := c.vals[key]
	return usagef("invalid config: %s = %q (from %s): %s", key, s.value, s.from, why)
}

// decodePipelines decodes the file's "pipelines" list into out, rejecting
// keys not in allowed with the line they are on.
func (c *config) decodePipelines(out any, allowed []string) error {
	if c.fileRoot == nil {
		return nil
	}
	for i := 0; i+1 < len(c.fileRoot.Content); i += 2 {
		if c.fileRoot.Content[i].Value != "pipelines" {
			continue
		}
		list := c.fileRoot.Content[i+1]
		if list.Kind != yaml.SequenceNode {
			return usagef("config %s line %d: pipelines must be a list", c.file, list.Line)
		}
		for n, p := range list.Content {
			if p.Kind != yaml.MappingNode {
				return usagef("config %s line %d: pipelines[%d] must be a mapping", c.file, p.Line, n)
			}
			for j := 0; j+1 < len(p.Content); j += 2 {
				if k := p.Content[j]; !slices.Contains(allowed, k.Value) {
					return usagef("config %s line %d: pipelines[%d]: unknown key %q", c.file, k.Line, n, k.Value)
				}
			}
		}
		if err := list.Decode(out); err != nil {
			return usagef("config %s: pipelines: %s", c.file, oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
		}
	}
	return nil
}
