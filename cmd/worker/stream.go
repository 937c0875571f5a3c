package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

var optWait = &option{key: "wait", usage: "how long to wait for the stream to become active (or gone, for delete)", def: "2m", kind: kDuration}

func init() {
	registerKeys(globalOptions...)
	registerKeys(optStream, optShards, optWait)
}

// kinesisClient builds the Kinesis client from the resolved config; empty
// values fall back to the SDK's standard chain.
func kinesisClient(ctx context.Context, cfg *config) (*kinesis.Client, error) {
	cl, err := kinesisapi.NewClient(ctx, kinesisapi.ClientOptions{
		Region:   cfg.str("region"),
		Endpoint: cfg.str("endpoint"),
		Profile:  cfg.str("profile"),
	})
	if err != nil {
		return nil, &usageError{fmt.Errorf("kinesis client: %w", err)}
	}
	return cl, nil
}

// streamName takes the stream from --stream or the first positional
// argument.
func streamName(cfg *config) (string, error) {
	name := cfg.str("stream")
	if len(cfg.args) > 0 {
		if cfg.isSet("stream") && cfg.args[0] != name {
			return "", usagef("stream given twice: %q (from %s) and argument %q", name, cfg.from("stream"), cfg.args[0])
		}
		name = cfg.args[0]
		if len(cfg.args) > 1 {
			return "", usagef("unexpected arguments: %q", cfg.args[1:])
		}
	}
	if name == "" {
		return "", usagef("no stream given: use --stream NAME (or $SHARDWORK_STREAM)")
	}
	return name, nil
}

func (c *cli) stream(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("stream: want a subcommand: create, describe or delete")
	}
	sub, args := args[0], args[1:]
	var opts []*option
	switch sub {
	case "create":
		opts = []*option{optStream, optShards, optWait}
	case "describe":
		opts = []*option{optStream}
	case "delete":
		opts = []*option{optStream, optWait}
	default:
		return usagef("stream: unknown subcommand %q (want create, describe or delete)", sub)
	}
	cfg, err := c.loadConfig("stream "+sub, args, opts...)
	if err != nil {
		return err
	}
	name, err := streamName(cfg)
	if err != nil {
		return err
	}
	cl, err := kinesisClient(ctx, cfg)
	if err != nil {
		return err
	}
	log := c.newLogger(cfg)
	switch sub {
	case "create":
		wctx, cancel := context.WithTimeout(ctx, cfg.dur("wait"))
		defer cancel()
		n := cfg.int("shards")
		if err := createStream(wctx, cl, name, n); err != nil {
			return err
		}
		log.Info("stream active", "stream", name, "shards", n)
		return c.describeStream(ctx, cl, name)
	case "describe":
		return c.describeStream(ctx, cl, name)
	default:
		if _, err := cl.DeleteStream(ctx, &kinesis.DeleteStreamInput{
			StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true),
		}); err != nil {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, cfg.dur("wait"))
		defer cancel()
		if err := waitStream(wctx, cl, name, true); err != nil {
			return err
		}
		log.Info("stream deleted", "stream", name)
		return nil
	}
}

// createStream creates a stream with n shards and waits until it is ACTIVE.
// A stream that already exists is an error unless it is active already.
func createStream(ctx context.Context, cl *kinesis.Client, name string, n int) error {
	_, err := cl.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))})
	if err != nil {
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			return fmt.Errorf("create stream %s: it already exists", name)
		}
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return waitStream(ctx, cl, name, false)
}

// ensureStream creates the stream when it does not exist and waits until it
// is ACTIVE; an existing stream is left as it is.
func ensureStream(ctx context.Context, cl *kinesis.Client, name string, n int) error {
	_, err := cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err == nil {
		return waitStream(ctx, cl, name, false)
	}
	if !kinesisapi.IsNotFound(err) {
		return fmt.Errorf("describe stream %s: %w", name, err)
	}
	_, err = cl.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return waitStream(ctx, cl, name, false)
}

// waitStream polls until the stream is ACTIVE (or, with gone, deleted).
func waitStream(ctx context.Context, cl *kinesis.Client, name string, gone bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		switch {
		case err != nil && gone && kinesisapi.IsNotFound(err):
			return nil
		case err != nil && ctx.Err() == nil && !gone:
			return fmt.Errorf("describe stream %s: %w", name, err)
		case err == nil && !gone && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive:
			return nil
		}
		select {
		case <-ctx.Done():
			what := "active"
			if gone {
				what = "deleted"
			}
			return fmt.Errorf("stream %s not %s in time: %w", name, what, ctx.Err())
		case <-tick.C:
		}
	}
}

// streamDescription is what `stream describe` prints (one JSON object).
type streamDescription struct {
	Name           string             `json:"name"`
	ARN            string             `json:"arn"`
	Status         string             `json:"status"`
	RetentionHours int32              `json:"retention_hours"`
	OpenShards     int32              `json:"open_shards"`
	Created        time.Time          `json:"created"`
	Shards         []shardDescription `json:"shards"`
}

type shardDescription struct {
	ID              string   `json:"id"`
	Parents         []string `json:"parents,omitempty"`
	StartingHashKey string   `json:"starting_hash_key"`
	EndingHashKey   string   `json:"ending_hash_key"`
	Closed          bool     `json:"closed"`
}

func (c *cli) describeStream(ctx context.Context, cl *kinesis.Client, name string) error {
	out, err := cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		if kinesisapi.IsNotFound(err) {
			return fmt.Errorf("stream %s not found", name)
		}
		return fmt.Errorf("describe stream %s: %w", name, err)
	}
	s := out.StreamDescriptionSummary
	d := streamDescription{
		Name: name, ARN: aws.ToString(s.StreamARN), Status: string(s.StreamStatus),
		RetentionHours: aws.ToInt32(s.RetentionPeriodHours), OpenShards: aws.ToInt32(s.OpenShardCount),
		Created: aws.ToTime(s.StreamCreationTimestamp).UTC(),
	}
	shards, err := kinesisapi.ListShards(ctx, cl, name)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		d.Shards = append(d.Shards, shardDescription{
			ID: sh.ID, Parents: sh.Parents(), Closed: sh.Closed,
			StartingHashKey: sh.StartingHashKey.String(), EndingHashKey: sh.EndingHashKey.String(),
		})
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
