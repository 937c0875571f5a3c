package shards

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

// settledClient lets a Kinesis call that has started finish when its
// context is cancelled (for up to timeout more) instead of aborting the
// request halfway. Stopping then waits at most for the calls in flight,
// and the server never sees a request cut off mid-body (kinesalite, for
// one, exits on that).
type settledClient struct {
	kinesisapi.Client
	timeout time.Duration
}

// ctx is a context for one call: it ends timeout after ctx ends (or when
// the call returns), not at once.
func (c settledClient) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var grace *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		grace = time.AfterFunc(c.timeout, cancel)
		mu.Unlock()
	})
	return cctx, func() {
		stop()
		mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

func (c settledClient) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.Client.GetRecords(cctx, in, o...)
}

func (c settledClient) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, o ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.Client.GetShardIterator(cctx, in, o...)
}

func (c settledClient) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.Client.ListShards(cctx, in, o...)
}

func (c settledClient) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, o ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.Client.DescribeStreamSummary(cctx, in, o...)
}

func (c settledClient) CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, o ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.Client.CreateStream(cctx, in, o...)
}
