package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/kinesisapi"
	"github.com/shardwork/shardwork/core/records"
)

// sink delivers user records to a stream and waits until each one is either
// accepted by Kinesis or has failed for good.
type sink interface {
	// Send returns nil when every record was accepted, a records.ItemErrors
	// naming each failed input when some failed, and any other error when
	// none could be sent.
	Send(ctx context.Context, recs []records.UserRecord) error
}

// flushMargin is the part of an invocation's remaining time kept for
// answering after a flush that did not finish.
const flushMargin = 500 * time.Millisecond

// producerSink sends through a core/batch producer started at cold start:
// Send queues the records, then Flush waits until each is delivered or given
// up, so nothing is left in flight when the invocation returns. Records the
// producer gives up reach the error callback; they are matched back to the
// inputs by content (invocations of one runtime never overlap, so every
// failure reported during a Send belongs to it).
type producerSink struct {
	p *batch.Producer

	mu      sync.Mutex
	current map[string][]int // record content → input indices not yet matched
	failed  records.ItemErrors
}

func newProducerSink(ctx context.Context, client kinesisapi.Client, stream string, proc records.Processor, attempts int) (*producerSink, error) {
	s := &producerSink{}
	p, err := batch.Open(ctx, client, stream,
		batch.WithProcessor(proc),
		batch.RetryLimit(attempts-1),
		batch.Backoff(50*time.Millisecond, 2*time.Second),
		batch.ErrorCallback(s.onFailure),
	)
	if err != nil {
		return nil, fmt.Errorf("producer for stream %s: %w", stream, err)
	}
	s.p = p
	return s, nil
}

func contentKey(pk, ehk string, data []byte) string {
	return pk + "\x00" + ehk + "\x00" + string(data)
}

func (s *producerSink) onFailure(fr batch.FailedRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := contentKey(fr.PartitionKey, fr.ExplicitHashKey, fr.Data)
	idx := s.current[k]
	if len(idx) == 0 {
		return // not this invocation's record
	}
	s.current[k] = idx[1:]
	s.failed = append(s.failed, records.ItemError{Index: idx[0], Err: fr})
}

// Send implements sink.
func (s *producerSink) Send(ctx context.Context, recs []records.UserRecord) error {
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	s.current = make(map[string][]int, len(recs))
	s.failed = nil
	s.mu.Unlock()
	var rejected records.ItemErrors
	queued := make([]bool, len(recs))
	for i, r := range recs {
		// The partition key is fixed here (the producer would pick a
		// random one) so that a failure can be matched back.
		if r.PartitionKey == "" {
			r.PartitionKey = randomKey()
			recs[i] = r
		}
		s.mu.Lock()
		k := contentKey(r.PartitionKey, r.ExplicitHashKey, r.Data)
		s.current[k] = append(s.current[k], i)
		s.mu.Unlock()
		if err := s.p.PutRecord(ctx, r); err != nil {
			if !errors.Is(err, batch.ErrInvalidRecord) {
				// The producer is closed or ctx ended: nothing more can
				// be queued; what was queued is still flushed below.
				for j := i; j < len(recs); j++ {
					rejected = append(rejected, records.ItemError{Index: j, Err: err})
				}
				break
			}
			rejected = append(rejected, records.ItemError{Index: i, Err: err})
			continue
		}
		queued[i] = true
	}
	fctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*flushMargin {
		fctx, cancel = context.WithDeadline(ctx, dl.Add(-flushMargin))
	}
	ferr := s.p.Flush(fctx)
	cancel()

	s.mu.Lock()
	failed := append(s.failed, rejected...)
	s.current, s.failed = nil, nil
	s.mu.Unlock()
	var de *batch.DeliveryError
	if ferr != nil && !errors.As(ferr, &de) {
		// The flush did not finish (deadline, closed producer): which of
		// the queued records were delivered is unknown, so all of them
		// count as failed (at least once: a retry may duplicate). A
		// DeliveryError only lists records the error callback named.
		seen := make(map[int]bool, len(failed))
		for _, f := range failed {
			seen[f.Index] = true
		}
		for i, q := range queued {
			if q && !seen[i] {
				failed = append(failed, records.ItemError{Index: i, Err: fmt.Errorf("flush to %s did not finish: %w", s.p.Stream(), ferr)})
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sortItemErrors(failed)
	return failed
}

// Close flushes and stops the producer.
func (s *producerSink) Close(ctx context.Context) error { return s.p.Close(ctx) }

func randomKey() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

func sortItemErrors(es records.ItemErrors) {
	slices.SortStableFunc(es, func(a, b records.ItemError) int { return cmp.Compare(a.Index, b.Index) })
}
