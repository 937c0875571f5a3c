package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/abi"
	"github.com/shardwork/shardwork/plugins/host"
)

var (
	optPluginConfig = &option{key: "plugin_config", usage: "JSON configuration given to the plugin's init"}
	optPluginKind   = &option{key: "kind", usage: "fail unless the plugin is this kind: serializer, aggregator or handler", kind: kEnum, enum: []string{"serializer", "aggregator", "handler"}}
)

func init() { registerKeys(optPluginConfig, optPluginKind, optCacheDir, optCallTimeout, optTrusted) }

func (c *cli) plugin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("plugin: want a subcommand: check, describe or compile")
	}
	sub, args := args[0], args[1:]
	var opts []*option
	switch sub {
	case "check":
		opts = []*option{optPluginConfig, optPluginKind, optCacheDir, optCallTimeout, optTrusted}
	case "describe":
		opts = []*option{optPluginConfig, optCacheDir}
	case "compile":
		opts = []*option{optCacheDir, optPluginConfig, optCallTimeout, optTrusted}
	default:
		return usagef("plugin: unknown subcommand %q (want check, describe or compile)", sub)
	}
	cfg, err := c.loadConfig("plugin "+sub, args, opts...)
	if err != nil {
		return err
	}
	if len(cfg.args) == 0 {
		return usagef("plugin %s: no plugin file given", sub)
	}
	for _, path := range cfg.args {
		if _, err := os.Stat(path); err != nil {
			return usagef("plugin file not found: %s", path)
		}
	}
	log := c.newLogger(cfg)
	var pcfg []byte
	if s := cfg.str("plugin_config"); s != "" {
		if !json.Valid([]byte(s)) {
			return badValue("plugin_config", s, cfg.from("plugin_config"), "not valid JSON")
		}
		pcfg = []byte(s)
	}
	switch sub {
	case "compile":
		dir := cfg.str("plugin_cache_dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return badValue("plugin_cache_dir", dir, cfg.from("plugin_cache_dir"), err.Error())
		}
		for _, path := range cfg.args {
			// Compile caches the code of both the sandboxed and the trusted
			// mode; the load then checks the plugin (from the cache).
			start := time.Now()
			if err := host.Compile(ctx, path, dir); err != nil {
				return usagef("plugin %s: %s", path, pluginProblem(err))
			}
			p, err := c.loadPlugin(ctx, cfg, "plugin", path, path, "argument", pcfg, log)
			if err != nil {
				return err
			}
			p.Close(ctx)
			fmt.Fprintf(c.stdout, "compiled %s into %s in %v\n", path, dir, time.Since(start).Round(time.Millisecond))
		}
		return nil
	case "describe":
		for _, path := range cfg.args {
			p, err := c.loadPlugin(ctx, cfg, "plugin", path, path, "argument", pcfg, log)
			if err != nil {
				return err
			}
			d := p.Description()
			p.Close(ctx)
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	var kinds []abi.Kind
	if k := cfg.str("kind"); k != "" {
		kinds = append(kinds, abi.Kind(k))
	}
	for _, path := range cfg.args {
		p, err := c.loadPlugin(ctx, cfg, "plugin", path, path, "argument", pcfg, log, kinds...)
		if err != nil {
			return err
		}
		checks, err := smokeTest(ctx, p)
		p.Close(ctx)
		d := p.Description()
		if err != nil {
			return usagef("plugin %s (%s): %v", path, d.Name, err)
		}
		fmt.Fprintf(c.stdout, "ok %s: %s %s, ABI %d, kinds %v; %s\n", path, d.Name, d.Version, d.ABI, d.Kinds, checks)
	}
	return nil
}

// smokeTest runs each of the plugin's kinds once on a small batch and
// checks that the answers are coherent: a serializer's items survive a
// round trip, an aggregator's records come back unchanged, a handler gives
// one verdict per record.
func smokeTest(ctx context.Context, p *host.Plugin) (string, error) {
	d := p.Description()
	done := ""
	add := func(s string) {
		if done != "" {
			done += ", "
		}
		done += s
	}
	if d.Has(abi.KindSerializer) {
		s, err := p.Serializer()
		if err != nil {
			return "", err
		}
		items := []any{map[string]any{"id": 1.0, "name": "check"}, "text", []any{1.0, true, nil}}
		data, err := s.Serialize(ctx, items)
		if err != nil {
			return "", fmt.Errorf("serialize: %w", err)
		}
		back, err := s.Deserialize(ctx, data)
		if err != nil {
			return "", fmt.Errorf("deserialize: %w", err)
		}
		if !reflect.DeepEqual(back, items) {
			return "", fmt.Errorf("serializer round trip changed the items: %v became %v", items, back)
		}
		add("serializer round trip")
	}
	if d.Has(abi.KindAggregator) {
		a, err := p.Aggregator()
		if err != nil {
			return "", err
		}
		var in []records.UserRecord
		for i := range 5 {
			in = append(in, records.UserRecord{PartitionKey: "k" + strconv.Itoa(i%2), Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		}
		aggs, err := a.Aggregate(ctx, in, records.MaxRecordSize)
		if err != nil {
			return "", fmt.Errorf("aggregate: %w", err)
		}
		var recs []records.Record
		total := 0
		for i, g := range aggs {
			total += g.Count
			recs = append(recs, records.Record{Data: g.Data, PartitionKey: g.PartitionKey, ExplicitHashKey: g.ExplicitHashKey,
				ShardID: "shardId-000000000000", SequenceNumber: strconv.Itoa(100 + i)})
		}
		if total != len(in) {
			return "", fmt.Errorf("aggregate: outputs cover %d records, want %d", total, len(in))
		}
		out, err := a.Deaggregate(ctx, recs)
		if err != nil {
			return "", fmt.Errorf("deaggregate: %w", err)
		}
		if len(out) != len(in) {
			return "", fmt.Errorf("deaggregate gave %d records, want %d", len(out), len(in))
		}
		for i := range in {
			if string(out[i].Data) != string(in[i].Data) {
				return "", fmt.Errorf("aggregator round trip changed record %d: %q became %q", i, in[i].Data, out[i].Data)
			}
		}
		add(fmt.Sprintf("aggregator round trip (%d records in %d)", len(in), len(aggs)))
	}
	if d.Has(abi.KindHandler) {
		h, err := p.Handler()
		if err != nil {
			return "", err
		}
		batch := []records.Record{
			{Data: []byte(`{"id":1}`), PartitionKey: "a", ShardID: "shardId-000000000000", SequenceNumber: "1", ArrivalTime: time.Now()},
			{Data: []byte(`{"id":2}`), PartitionKey: "b", ShardID: "shardId-000000000000", SequenceNumber: "2", ArrivalTime: time.Now()},
		}
		out, err := h.Handle(ctx, batch)
		if err != nil {
			return "", fmt.Errorf("handle: %w", err)
		}
		if len(out.Results) != len(batch) {
			return "", fmt.Errorf("handle gave %d results for %d records", len(out.Results), len(batch))
		}
		add(fmt.Sprintf("handler (%d results, %d emitted)", len(out.Results), len(out.Emit)))
	}
	if done == "" {
		return "", errors.New("the plugin declares no kind")
	}
	return done, nil
}
