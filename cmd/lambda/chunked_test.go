package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/shardwork/shardwork/core/records"
)

// echoHandler gives each record a result naming its partition key and emits
// one record per input; failOn makes the call holding that key fail.
type echoHandler struct {
	calls  atomic.Int32
	failOn string
	short  bool
}

func (h *echoHandler) Handle(ctx context.Context, batch []records.Record) (records.HandlerOutput, error) {
	h.calls.Add(1)
	var out records.HandlerOutput
	for _, r := range batch {
		if r.PartitionKey == h.failOn {
			return records.HandlerOutput{}, fmt.Errorf("call with %s failed", r.PartitionKey)
		}
		out.Results = append(out.Results, records.Result{Status: records.StatusOK, Message: r.PartitionKey})
		out.Emit = append(out.Emit, records.UserRecord{PartitionKey: r.PartitionKey, Data: r.Data})
	}
	if h.short {
		out.Results = out.Results[1:]
	}
	return out, nil
}

func keyedBatch(n int) []records.Record {
	b := make([]records.Record, n)
	for i := range b {
		b[i] = records.Record{PartitionKey: fmt.Sprint("k", i), Data: []byte{byte(i)}}
	}
	return b
}

func TestChunkedHandlerKeepsOrder(t *testing.T) {
	for _, n := range []int{0, 1, minChunk - 1, 2*minChunk + 1, 10000} {
		h := &echoHandler{}
		c := chunkedHandler{h: h, parts: 4}
		batch := keyedBatch(n)
		out, err := c.Handle(context.Background(), batch)
		if err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		want, _ := (&echoHandler{}).Handle(context.Background(), batch)
		if len(out.Results) != n || !reflect.DeepEqual(out.Results, want.Results) || !reflect.DeepEqual(out.Emit, want.Emit) {
			t.Fatalf("%d records: output differs from one call (%d results, %d emitted)", n, len(out.Results), len(out.Emit))
		}
		wantCalls := int32(max(1, min(4, n/minChunk)))
		if got := h.calls.Load(); got != wantCalls {
			t.Errorf("%d records: %d calls, want %d", n, got, wantCalls)
		}
	}
}

func TestChunkedHandlerFirstPartError(t *testing.T) {
	h := &echoHandler{failOn: "k9000"}
	_, err := chunkedHandler{h: h, parts: 4}.Handle(context.Background(), keyedBatch(10000))
	if err == nil || err.Error() != "call with k9000 failed" {
		t.Fatalf("error %v", err)
	}
	_, err = chunkedHandler{h: &echoHandler{short: true}, parts: 2}.Handle(context.Background(), keyedBatch(4000))
	if err == nil || err.Error() != "handler returned 1999 results for 2000 records (records 0 to 1999)" {
		t.Fatalf("error %v", err)
	}
}

func TestCheckDecodableMatchesDeserialize(t *testing.T) {
	ctx := context.Background()
	data := [][]byte{[]byte(`{"a":1}`), []byte(`{"a":`), []byte(`[1,2]`), []byte(`nope`), []byte(`"s"`)}
	for _, ser := range []records.Serializer{records.JSONSerializer{}, records.JSONSerializer{UseNumber: true}} {
		_, want := ser.Deserialize(ctx, data)
		got := checkDecodable(ctx, ser, data)
		var wi, gi records.ItemErrors
		if !errors.As(want, &wi) || !errors.As(got, &gi) {
			t.Fatalf("errors %v / %v", want, got)
		}
		if len(gi) != 2 || gi[0].Index != 1 || gi[1].Index != 3 || got.Error() != want.Error() {
			t.Fatalf("checkDecodable %v, Deserialize %v", got, want)
		}
		if err := checkDecodable(ctx, ser, data[:1]); err != nil {
			t.Fatalf("valid JSON: %v", err)
		}
	}
	// Other serializers are run as they are.
	if err := checkDecodable(ctx, records.StringSerializer{}, [][]byte{{0xff}}); err == nil {
		t.Fatal("invalid UTF-8 passed the string serializer")
	}
}
