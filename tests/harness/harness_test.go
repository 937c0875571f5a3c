package harness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestMain(m *testing.M) { Main(m) }

func TestKinesaliteRoundTrip(t *testing.T) {
	env := Kinesis(t)
	stream := env.NewStream(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries := []types.PutRecordsRequestEntry{
		{Data: []byte("one"), PartitionKey: aws.String("a")},
		{Data: []byte("two"), PartitionKey: aws.String("b")},
		{Data: []byte("three"), PartitionKey: aws.String("c")},
	}
	out, err := env.Client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
		t.Fatalf("FailedRecordCount = %d", n)
	}
	recs, err := env.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[aws.ToString(r.PartitionKey)] = string(r.Data)
	}
	want := map[string]string{"a": "one", "b": "two", "c": "three"}
	if len(got) != len(want) {
		t.Fatalf("read %d records %v, want %v", len(recs), got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("record %q = %q, want %q", k, got[k], v)
		}
	}
}

func TestRedisAnswers(t *testing.T) {
	r := Redis(t)
	if err := ping(context.Background(), r.Addr); err != nil {
		t.Fatalf("redis at %s: %v", r.Addr, err)
	}
}

func TestUniqueNameDiffers(t *testing.T) {
	a, b := UniqueName(t), UniqueName(t)
	if a == b {
		t.Fatalf("two unique names are equal: %q", a)
	}
	if len(a) > 128 {
		t.Fatalf("name too long: %d", len(a))
	}
}

// A client that gives up on a request while its body is being sent makes
// kinesalite throw an uncaught "aborted" error; the harness keeps it serving.
func TestKinesaliteSurvivesAbortedRequest(t *testing.T) {
	env := Kinesis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(env.Endpoint, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\n"+
			"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n{\"Lim")
		// Wait until the server has read what was sent, then hang up.
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if _, err := env.Client.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("kinesalite stopped answering after aborted requests: %v", err)
	}
	mu.Lock()
	k := kin
	mu.Unlock()
	if k.Exited() {
		t.Fatalf("kinesalite exited:\n%s", k.Output())
	}
}
