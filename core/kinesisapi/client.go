package kinesisapi

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// ClientOptions selects how NewClient reaches Kinesis. Empty fields fall back
// to the SDK's standard chain (AWS_REGION, AWS_PROFILE,
// AWS_ENDPOINT_URL_KINESIS, shared config files, instance roles).
type ClientOptions struct {
	Region   string
	Endpoint string // e.g. a local kinesalite: http://127.0.0.1:4567
	// Profile selects a shared config profile (default: AWS_PROFILE).
	Profile string
	// StaticCredentials, when both are set, replaces the credential chain
	// (a local kinesalite accepts any).
	AccessKeyID, SecretAccessKey string
}

// NewClient builds an SDK Kinesis client. The SDK's own retries are turned
// off: shardwork's producer and consumer retry with their own backoff and
// per-shard throttling, and two retry layers would multiply the load on a
// throttled shard.
func NewClient(ctx context.Context, o ClientOptions) (*kinesis.Client, error) {
	var loaders []func(*config.LoadOptions) error
	if o.Region != "" {
		loaders = append(loaders, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		loaders = append(loaders, config.WithSharedConfigProfile(o.Profile))
	}
	if o.AccessKeyID != "" && o.SecretAccessKey != "" {
		loaders = append(loaders, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	loaders = append(loaders, config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	cfg, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if cfg.Region == "" {
		if o.Endpoint == "" {
			return nil, fmt.Errorf("no aws region: set AWS_REGION or the region option")
		}
		cfg.Region = "us-east-1"
	}
	return kinesis.NewFromConfig(cfg, func(ko *kinesis.Options) {
		if o.Endpoint != "" {
			ko.BaseEndpoint = aws.String(o.Endpoint)
		}
	}), nil
}
