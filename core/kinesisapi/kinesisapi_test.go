package kinesisapi_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwork/shardwork/core/kinesisapi"
)

var (
	two128  = new(big.Int).Lsh(big.NewInt(1), 128)
	maxHash = new(big.Int).Sub(two128, big.NewInt(1))
)

func TestParseHashKeyStrict(t *testing.T) {
	ok := []string{"0", "1", "9", "10", "170141183460469231731687303715884105728", maxHash.String()}
	for _, s := range ok {
		h, err := kinesisapi.ParseHashKey(s)
		if err != nil {
			t.Fatalf("ParseHashKey(%q): %v", s, err)
		}
		if h.String() != s {
			t.Fatalf("ParseHashKey(%q).String() = %q", s, h.String())
		}
	}
	bad := []string{"", "-1", "+1", "-0", "00", "01", " 1", "1 ", "1e3", "0x10", "1_000", "１",
		two128.String(),                     // 2^128
		"9" + strings.Repeat("9", 38) + "9", // 40 digits
		strings.Repeat("9", 39),             // 39 digits over 2^128-1
	}
	for _, s := range bad {
		if h, err := kinesisapi.ParseHashKey(s); err == nil {
			t.Errorf("ParseHashKey(%q) = %s, want an error", s, h)
		} else if !strings.Contains(err.Error(), "invalid hash key") {
			t.Errorf("ParseHashKey(%q): error %q does not say what is wrong", s, err)
		}
	}
}

func TestHashKeyBytesAndOrder(t *testing.T) {
	h, err := kinesisapi.ParseHashKey("256")
	if err != nil {
		t.Fatal(err)
	}
	want := kinesisapi.HashKey{14: 1}
	if h != want {
		t.Fatalf("256 = %x, want big-endian %x", h, want)
	}
	one, _ := kinesisapi.ParseHashKey("1")
	if !one.Less(h) || h.Less(one) || h.Less(h) {
		t.Fatal("Less does not order numerically")
	}
}

func TestPartitionKeyHashKnownMD5(t *testing.T) {
	for _, c := range []struct{ key, md5hex string }{
		{"", "d41d8cd98f00b204e9800998ecf8427e"},
		{"a", "0cc175b9c0f1b6a831c399e269772661"},
		{"abc", "900150983cd24fb0d6963f7d28e17f72"},
		{"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
		{"é", hex.EncodeToString(func() []byte { s := md5.Sum([]byte{0xc3, 0xa9}); return s[:] }())},
	} {
		h := kinesisapi.PartitionKeyHash(c.key)
		if hex.EncodeToString(h[:]) != c.md5hex {
			t.Errorf("PartitionKeyHash(%q) = %x, want %s", c.key, h, c.md5hex)
		}
		n, _ := new(big.Int).SetString(c.md5hex, 16)
		if h.String() != n.String() {
			t.Errorf("PartitionKeyHash(%q) decimal = %s, want %s", c.key, h, n)
		}
	}
	// The explicit hash key wins over the partition key.
	h, err := kinesisapi.RecordHashKey("a", "5")
	if err != nil || h.String() != "5" {
		t.Fatalf("RecordHashKey with explicit key: %s %v", h, err)
	}
	if _, err := kinesisapi.RecordHashKey("a", "-5"); err == nil {
		t.Fatal("RecordHashKey accepted an invalid explicit hash key")
	}
}

// evenShards splits the hash-key space into n shards like CreateStream does.
func evenShards(n int) []types.Shard {
	step := new(big.Int).Div(two128, big.NewInt(int64(n)))
	var out []types.Shard
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = maxHash
		}
		out = append(out, types.Shard{
			ShardId:             aws.String(fmt.Sprintf("shardId-%012d", i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start.String()), EndingHashKey: aws.String(end.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
	return out
}

func toShards(t *testing.T, in []types.Shard) []kinesisapi.Shard {
	t.Helper()
	var out []kinesisapi.Shard
	for _, s := range in {
		sh, err := kinesisapi.FromSDK(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sh)
	}
	return out
}

func TestShardMapLookup(t *testing.T) {
	sdk := evenShards(4)
	// A closed parent covering everything must be ignored.
	sdk = append(sdk, types.Shard{
		ShardId:             aws.String("shardId-parent"),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(maxHash.String())},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0"), EndingSequenceNumber: aws.String("1")},
	})
	// Reverse order: NewShardMap sorts.
	for i, j := 0, len(sdk)-1; i < j; i, j = i+1, j-1 {
		sdk[i], sdk[j] = sdk[j], sdk[i]
	}
	m := kinesisapi.NewShardMap(toShards(t, sdk))
	if m.Len() != 4 {
		t.Fatalf("open shards %d, want 4", m.Len())
	}
	for i, s := range m.Shards() {
		if s.ID != fmt.Sprintf("shardId-%012d", i) {
			t.Fatalf("shard %d is %s: not in hash-key order", i, s.ID)
		}
		// Both ends of each range and one past the end.
		for _, h := range []kinesisapi.HashKey{s.StartingHashKey, s.EndingHashKey} {
			got, ok := m.Lookup(h)
			if !ok || got.ID != s.ID {
				t.Fatalf("Lookup(%s) = %s %v, want %s", h, got.ID, ok, s.ID)
			}
		}
	}
	quarter := new(big.Int).Rsh(two128, 2)
	for _, c := range []struct {
		key  *big.Int
		want int
	}{
		{big.NewInt(0), 0},
		{new(big.Int).Sub(quarter, big.NewInt(1)), 0},
		{quarter, 1},
		{new(big.Int).Mul(quarter, big.NewInt(3)), 3},
		{maxHash, 3},
	} {
		s, err := m.ShardFor("ignored", c.key.String())
		if err != nil || s.ID != fmt.Sprintf("shardId-%012d", c.want) {
			t.Errorf("ShardFor(explicit %s) = %s %v, want shard %d", c.key, s.ID, err, c.want)
		}
	}
	// Partition keys route by the top bits of their MD5.
	for _, key := range []string{"a", "abc", "customer-42", ""} {
		h := kinesisapi.PartitionKeyHash(key)
		s, err := m.ShardFor(key, "")
		if err != nil || s.ID != fmt.Sprintf("shardId-%012d", h[0]>>6) {
			t.Errorf("ShardFor(%q) = %s %v, hash %x", key, s.ID, err, h)
		}
	}
}

func TestShardMapGap(t *testing.T) {
	sdk := evenShards(2)[1:] // only the upper half is open
	m := kinesisapi.NewShardMap(toShards(t, sdk))
	if _, ok := m.Lookup(kinesisapi.HashKey{}); ok {
		t.Fatal("Lookup found a shard for a hash key no open shard holds")
	}
	if _, err := m.ShardFor("x", "0"); err == nil || !strings.Contains(err.Error(), "no open shard") {
		t.Fatalf("ShardFor into a gap: %v", err)
	}
	empty := kinesisapi.NewShardMap(nil)
	if _, ok := empty.Lookup(kinesisapi.HashKey{}); ok || empty.Len() != 0 {
		t.Fatal("an empty map found a shard")
	}
}

func TestFromSDK(t *testing.T) {
	s := evenShards(1)[0]
	s.ParentShardId = aws.String("p1")
	s.AdjacentParentShardId = aws.String("p2")
	sh, err := kinesisapi.FromSDK(s)
	if err != nil || sh.Closed || len(sh.Parents()) != 2 || sh.Parents()[1] != "p2" {
		t.Fatalf("FromSDK: %+v %v", sh, err)
	}
	if _, err := kinesisapi.FromSDK(types.Shard{ShardId: aws.String("x")}); err == nil {
		t.Fatal("FromSDK accepted a shard without a hash key range")
	}
	s.HashKeyRange = &types.HashKeyRange{StartingHashKey: aws.String("01"), EndingHashKey: aws.String("5")}
	if _, err := kinesisapi.FromSDK(s); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("FromSDK with a bad starting key: %v", err)
	}
}

// fakeClient serves ListShards from pages; other methods are not used.
type fakeClient struct {
	kinesisapi.Client
	pages []*kinesis.ListShardsOutput
	calls []kinesis.ListShardsInput
	err   error
}

func (f *fakeClient) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.calls = append(f.calls, *in)
	if f.err != nil {
		return nil, f.err
	}
	i := len(f.calls) - 1
	if i >= len(f.pages) {
		return nil, errors.New("more pages requested than exist")
	}
	return f.pages[i], nil
}

func TestListShardsPagination(t *testing.T) {
	all := evenShards(5)
	f := &fakeClient{pages: []*kinesis.ListShardsOutput{
		{Shards: all[:2], NextToken: aws.String("t1")},
		{Shards: all[2:4], NextToken: aws.String("t2")},
		{Shards: all[4:], NextToken: aws.String("")},
	}}
	got, err := kinesisapi.ListShards(context.Background(), f, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || len(f.calls) != 3 {
		t.Fatalf("%d shards in %d calls, want 5 in 3", len(got), len(f.calls))
	}
	for i, s := range got {
		if s.ID != aws.ToString(all[i].ShardId) {
			t.Fatalf("shard %d = %s", i, s.ID)
		}
	}
	if aws.ToString(f.calls[0].StreamName) != "orders" || f.calls[0].NextToken != nil {
		t.Fatalf("first call %+v: want StreamName and no token", f.calls[0])
	}
	for i, want := range []string{"t1", "t2"} {
		c := f.calls[i+1]
		if c.StreamName != nil || aws.ToString(c.NextToken) != want {
			t.Fatalf("call %d: StreamName %v token %q; Kinesis forbids StreamName with a token", i+1, c.StreamName, aws.ToString(c.NextToken))
		}
	}
}

func TestListShardsErrors(t *testing.T) {
	nf := &types.ResourceNotFoundException{Message: aws.String("no stream")}
	_, err := kinesisapi.ListShards(context.Background(), &fakeClient{err: nf}, "missing")
	if !kinesisapi.IsNotFound(err) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("ListShards of a missing stream: %v", err)
	}
	bad := evenShards(1)
	bad[0].HashKeyRange.EndingHashKey = aws.String("x")
	_, err = kinesisapi.ListShards(context.Background(), &fakeClient{pages: []*kinesis.ListShardsOutput{{Shards: bad}}}, "s")
	if err == nil || !strings.Contains(err.Error(), "ending") {
		t.Fatalf("ListShards with a bad hash key: %v", err)
	}
	if kinesisapi.IsThrottle(err) || !kinesisapi.IsThrottle(fmt.Errorf("w: %w", &types.ProvisionedThroughputExceededException{})) ||
		!kinesisapi.IsThrottle(&types.LimitExceededException{}) {
		t.Fatal("IsThrottle misclassifies")
	}
}

func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"0", "1", "00", "-1", maxHash.String(), two128.String()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := kinesisapi.ParseHashKey(s)
		n, ok := new(big.Int).SetString(s, 10)
		canonical := ok && n.Sign() >= 0 && n.Cmp(maxHash) <= 0 && n.String() == s
		if (err == nil) != canonical {
			t.Fatalf("ParseHashKey(%q) err %v, canonical %v", s, err, canonical)
		}
		if err == nil && h.String() != s {
			t.Fatalf("round trip %q -> %s", s, h)
		}
	})
}

func ExampleShardMap_ShardFor() {
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	m := kinesisapi.NewShardMap([]kinesisapi.Shard{
		{ID: "shardId-000000000000", EndingHashKey: mustKey(new(big.Int).Sub(half, big.NewInt(1)).String())},
		{ID: "shardId-000000000001", StartingHashKey: mustKey(half.String()), EndingHashKey: mustKey(maxHash.String())},
	})
	for _, key := range []string{"a", "abc"} {
		s, _ := m.ShardFor(key, "")
		fmt.Println(key, kinesisapi.PartitionKeyHash(key), s.ID)
	}
	// Output:
	// a 16955237001963240173058271559858726497 shardId-000000000000
	// abc 191415658344158766168031473277922803570 shardId-000000000001
}

func mustKey(s string) kinesisapi.HashKey {
	h, err := kinesisapi.ParseHashKey(s)
	if err != nil {
		panic(err)
	}
	return h
}
