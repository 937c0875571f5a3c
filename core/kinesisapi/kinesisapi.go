package kinesisapi

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Client is the part of the SDK's *kinesis.Client that shardwork uses. The
// method signatures are the SDK's own, so the real client and test fakes both
// satisfy it.
type Client interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, optFns ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
}

var _ Client = (*kinesis.Client)(nil)

// HashKey is a 128-bit Kinesis hash key, big-endian, so that bytes.Compare
// orders hash keys as numbers.
type HashKey [16]byte

// maxHashKey is 2^128 - 1.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// PartitionKeyHash is the hash key Kinesis derives from a partition key: the
// MD5 of its UTF-8 bytes read as a 128-bit unsigned integer.
func PartitionKeyHash(partitionKey string) HashKey {
	return HashKey(md5.Sum([]byte(partitionKey)))
}

// ParseHashKey parses a decimal hash key in [0, 2^128-1], written as Kinesis
// writes it: digits only, no sign, no leading zeros (0|[1-9][0-9]{0,38}).
func ParseHashKey(s string) (HashKey, error) {
	if !canonicalDecimal(s) {
		return HashKey{}, fmt.Errorf("invalid hash key %q: want a decimal integer in [0, 2^128-1]", s)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Cmp(maxHashKey) > 0 {
		return HashKey{}, fmt.Errorf("invalid hash key %q: want a decimal integer in [0, 2^128-1]", s)
	}
	var h HashKey
	n.FillBytes(h[:])
	return h, nil
}

// canonicalDecimal reports whether s matches 0|[1-9][0-9]{0,38}.
func canonicalDecimal(s string) bool {
	if len(s) == 0 || len(s) > 39 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the hash key in decimal, as Kinesis writes it.
func (h HashKey) String() string { return new(big.Int).SetBytes(h[:]).String() }

// Less reports whether h < o.
func (h HashKey) Less(o HashKey) bool {
	for i := range h {
		if h[i] != o[i] {
			return h[i] < o[i]
		}
	}
	return false
}

// RecordHashKey is the hash key that routes a record: its explicit hash key
// when set, otherwise the hash of its partition key.
func RecordHashKey(partitionKey, explicitHashKey string) (HashKey, error) {
	if explicitHashKey != "" {
		return ParseHashKey(explicitHashKey)
	}
	return PartitionKeyHash(partitionKey), nil
}

// Shard is one shard with its parsed hash-key range and lineage.
type Shard struct {
	ID                    string
	ParentShardID         string
	AdjacentParentShardID string
	StartingHashKey       HashKey
	EndingHashKey         HashKey
	// Closed is true when the shard has an ending sequence number: it takes
	// no more writes and its readers will reach SHARD_END.
	Closed bool
}

// FromSDK converts an SDK shard.
func FromSDK(s types.Shard) (Shard, error) {
	out := Shard{
		ID:                    aws.ToString(s.ShardId),
		ParentShardID:         aws.ToString(s.ParentShardId),
		AdjacentParentShardID: aws.ToString(s.AdjacentParentShardId),
	}
	if s.HashKeyRange == nil {
		return Shard{}, fmt.Errorf("shard %s: no hash key range", out.ID)
	}
	var err error
	if out.StartingHashKey, err = ParseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey)); err != nil {
		return Shard{}, fmt.Errorf("shard %s: starting %w", out.ID, err)
	}
	if out.EndingHashKey, err = ParseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey)); err != nil {
		return Shard{}, fmt.Errorf("shard %s: ending %w", out.ID, err)
	}
	if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
		out.Closed = true
	}
	return out, nil
}

// Parents returns the shard's parent ids (zero, one, or two for a merge).
func (s Shard) Parents() []string {
	var p []string
	if s.ParentShardID != "" {
		p = append(p, s.ParentShardID)
	}
	if s.AdjacentParentShardID != "" {
		p = append(p, s.AdjacentParentShardID)
	}
	return p
}

// ShardMap routes hash keys to the open shards of a stream.
// It is immutable and safe for concurrent use.
type ShardMap struct {
	open []Shard // sorted by StartingHashKey
}

// NewShardMap builds a map over the open shards among shards.
func NewShardMap(shards []Shard) *ShardMap {
	m := &ShardMap{}
	for _, s := range shards {
		if !s.Closed {
			m.open = append(m.open, s)
		}
	}
	sort.Slice(m.open, func(i, j int) bool { return m.open[i].StartingHashKey.Less(m.open[j].StartingHashKey) })
	return m
}

// Len is the number of open shards.
func (m *ShardMap) Len() int { return len(m.open) }

// Shards returns the open shards in hash-key order. The slice must not be
// modified.
func (m *ShardMap) Shards() []Shard { return m.open }

// Lookup returns the open shard whose range holds h.
func (m *ShardMap) Lookup(h HashKey) (Shard, bool) {
	i := sort.Search(len(m.open), func(i int) bool { return h.Less(m.open[i].StartingHashKey) }) - 1
	if i < 0 {
		return Shard{}, false
	}
	s := m.open[i]
	if s.EndingHashKey.Less(h) {
		return Shard{}, false
	}
	return s, true
}

// ShardFor returns the shard a record with these keys is written to.
func (m *ShardMap) ShardFor(partitionKey, explicitHashKey string) (Shard, error) {
	h, err := RecordHashKey(partitionKey, explicitHashKey)
	if err != nil {
		return Shard{}, err
	}
	s, ok := m.Lookup(h)
	if !ok {
		return Shard{}, fmt.Errorf("no open shard holds hash key %s", h)
	}
	return s, nil
}

// ListShards lists every shard of a stream, following NextToken pages.
func ListShards(ctx context.Context, c Client, stream string) ([]Shard, error) {
	var out []Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		res, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of stream %s: %w", stream, err)
		}
		for _, s := range res.Shards {
			sh, err := FromSDK(s)
			if err != nil {
				return nil, fmt.Errorf("list shards of stream %s: %w", stream, err)
			}
			out = append(out, sh)
		}
		if res.NextToken == nil || *res.NextToken == "" {
			return out, nil
		}
		// With NextToken, Kinesis forbids StreamName.
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// IsNotFound reports whether err says the stream (or shard) does not exist.
func IsNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// IsThrottle reports whether err is a throughput or rate-limit refusal.
func IsThrottle(err error) bool {
	var pt *types.ProvisionedThroughputExceededException
	var le *types.LimitExceededException
	return errors.As(err, &pt) || errors.As(err, &le)
}
