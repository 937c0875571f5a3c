package shards

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

// slowClient answers GetRecords after delay, or fails when its ctx ends.
type slowClient struct {
	kinesisapi.Client
	delay time.Duration
}

func (c slowClient) GetRecords(ctx context.Context, _ *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	select {
	case <-time.After(c.delay):
		return &kinesis.GetRecordsOutput{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A call in flight when its context is cancelled finishes if it can
// within the grace period, and is cut off after it; a slow call is never
// cut off while its context lives.
func TestSettledClientLetsCallsFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			delay   time.Duration
			wantErr bool
		}{{2 * time.Second, false}, {10 * time.Second, true}} {
			c := settledClient{slowClient{delay: tc.delay}, 5 * time.Second}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			start := time.Now()
			_, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("delay %v: err %v, want error %v", tc.delay, err, tc.wantErr)
			}
			if tc.wantErr && (!errors.Is(err, context.Canceled) || time.Since(start) != 6*time.Second) {
				t.Fatalf("delay %v: %v after %v, want cancelled after 6s", tc.delay, err, time.Since(start))
			}
		}
		// Without cancellation a slow call is left alone.
		c := settledClient{slowClient{delay: time.Minute}, 5 * time.Second}
		if _, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{}); err != nil {
			t.Fatal(err)
		}
		// A call made after cancellation is not made.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("call after cancel: %v", err)
		}
	})
}
