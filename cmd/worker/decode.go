package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shardwork/shardwork/core/records"
)

var (
	optDecodeFormat = &option{key: "format", usage: "input format: auto (a Lambda Kinesis event when it looks like one, else a raw payload), raw or lambda", def: "auto", kind: kEnum, enum: []string{"auto", "raw", "lambda"}}
	optRaw          = &option{key: "raw", usage: "print each user record's bytes (base64) with its metadata instead of the decoded item", def: "false", kind: kBool}
	optPartitionKey = &option{key: "partition_key", usage: "partition key of a raw payload (for KPL explicit hash key checks and the printed metadata)"}
)

func init() { registerKeys(optProcessor, optInput, optMeta, optDecodeFormat, optRaw, optPartitionKey) }

// lambdaEvent is the part of a Lambda Kinesis event that decode reads.
type lambdaEvent struct {
	Records []struct {
		EventID        string `json:"eventID"`
		EventSourceARN string `json:"eventSourceARN"`
		Kinesis        *struct {
			PartitionKey                string  `json:"partitionKey"`
			SequenceNumber              string  `json:"sequenceNumber"`
			Data                        string  `json:"data"`
			ApproximateArrivalTimestamp float64 `json:"approximateArrivalTimestamp"`
		} `json:"kinesis"`
	} `json:"Records"`
}

// readInput opens the input file, or stdin for "-".
func (c *cli) readInput(cfg *config) ([]byte, error) {
	path := cfg.str("input")
	if path == "-" || path == "" {
		return io.ReadAll(c.stdin)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, usagef("input file %s not found", path)
		}
		return nil, fmt.Errorf("read input: %w", err)
	}
	return data, nil
}

// parseDecodeInput turns the input into the Kinesis records to decode.
func parseDecodeInput(data []byte, format, partitionKey string) ([]records.Record, error) {
	trimmed := bytes.TrimSpace(data)
	if format == "lambda" || (format == "auto" && len(trimmed) > 0 && trimmed[0] == '{') {
		var ev lambdaEvent
		err := json.Unmarshal(trimmed, &ev)
		isEvent := err == nil && len(ev.Records) > 0 && ev.Records[0].Kinesis != nil
		if !isEvent && format == "lambda" {
			if err != nil {
				return nil, usagef("input is not a Lambda Kinesis event: %s", oneLine(err.Error()))
			}
			return nil, usagef("input is not a Lambda Kinesis event: no Records[].kinesis")
		}
		if isEvent {
			out := make([]records.Record, 0, len(ev.Records))
			for i, r := range ev.Records {
				if r.Kinesis == nil {
					return nil, usagef("event record %d has no kinesis field", i)
				}
				d, err := base64.StdEncoding.DecodeString(r.Kinesis.Data)
				if err != nil {
					return nil, usagef("event record %d: data is not base64: %v", i, err)
				}
				shard, _, _ := strings.Cut(r.EventID, ":")
				rec := records.Record{
					Data: d, PartitionKey: r.Kinesis.PartitionKey, SequenceNumber: r.Kinesis.SequenceNumber,
					ShardID: shard,
				}
				if ts := r.Kinesis.ApproximateArrivalTimestamp; ts > 0 {
					sec := int64(ts)
					rec.ArrivalTime = time.Unix(sec, int64((ts-float64(sec))*1e9)).UTC()
				}
				out = append(out, rec)
			}
			return out, nil
		}
	}
	return []records.Record{{Data: data, PartitionKey: partitionKey}}, nil
}

func (c *cli) decode(ctx context.Context, args []string) error {
	cfg, err := c.loadConfig("decode", args, optProcessor, optInput, optMeta, optDecodeFormat, optRaw, optPartitionKey, optCacheDir, optCallTimeout, optTrusted)
	if err != nil {
		return err
	}
	if len(cfg.args) > 0 {
		return usagef("decode: unexpected arguments %q (use --input FILE)", cfg.args)
	}
	log := c.newLogger(cfg)
	proc, closeProc, err := c.resolveProcessor(ctx, cfg, "processor", log)
	if err != nil {
		return err
	}
	defer closeProc(context.WithoutCancel(ctx))
	data, err := c.readInput(cfg)
	if err != nil {
		return err
	}
	in, err := parseDecodeInput(data, cfg.str("format"), cfg.str("partition_key"))
	if err != nil {
		return err
	}
	var failures []string
	user, err := proc.Aggregator.Deaggregate(ctx, in)
	if items, batch := records.SplitErrors(err); batch != nil {
		return fmt.Errorf("deaggregate: %w", batch)
	} else {
		for _, e := range items {
			failures = append(failures, fmt.Sprintf("kinesis record %d: %v", e.Index, e.Err))
		}
	}
	out := newLineWriter(c.stdout, cfg.bool("meta"))
	defer out.Flush()
	if cfg.bool("raw") {
		for _, r := range user {
			if err := out.writeRaw(r); err != nil {
				return err
			}
		}
	} else {
		datas := make([][]byte, len(user))
		for i, r := range user {
			datas[i] = r.Data
		}
		items, err := proc.Serializer.Deserialize(ctx, datas)
		bad := map[int]bool{}
		if ie, batch := records.SplitErrors(err); batch != nil {
			return fmt.Errorf("deserialize: %w", batch)
		} else {
			for _, e := range ie {
				bad[e.Index] = true
				r := user[e.Index]
				failures = append(failures, fmt.Sprintf("user record %s#%d (partition key %q): %v", r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, e.Err))
			}
		}
		for i, r := range user {
			if bad[i] || i >= len(items) {
				continue
			}
			if err := out.write(r, items[i]); err != nil {
				return err
			}
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if len(failures) > 0 {
		for _, f := range failures {
			log.Error("decode failed", "record", f)
		}
		return &failedError{code: exitFailure, err: errors.New(fmt.Sprintf("%d of the input could not be decoded; first: %s", len(failures), failures[0]))}
	}
	return nil
}
