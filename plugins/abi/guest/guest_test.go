package guest

import (
	"strings"
	"testing"

	"github.com/shardwork/shardwork/plugins/abi"
)

// The SDK's dispatch runs natively through Invoke; these tests register a
// handler and check the encoded outputs and the panic path.
func TestInvokeHandler(t *testing.T) {
	Describe(Info{Name: "t", Version: "1"})
	RegisterHandler(func(r *Record, emit Emitter) Result {
		switch string(r.Data) {
		case "skip":
			return Result{Status: Skip, Message: "skipped " + r.PartitionKey}
		case "boom":
			panic("boom on " + r.SequenceNumber)
		}
		emit.Emit(UserRecord{PartitionKey: r.PartitionKey, Data: append([]byte("seen:"), r.Data...)})
		return Result{}
	})
	defer RegisterHandler(nil)
	in := abi.Batch{Op: abi.OpHandle, Records: []abi.Record{{Data: []byte("a"), PartitionKey: []byte("k1")}, {Data: []byte("skip"), PartitionKey: []byte("k2")}}}
	buf, _ := in.Append(nil)
	outBuf, err := Invoke(abi.OpHandle, buf)
	if err != nil {
		t.Fatal(err)
	}
	var out abi.Batch
	if err := abi.Decode(outBuf, &out); err != nil {
		t.Fatal(err)
	}
	if err := abi.CheckOutput(&in, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || string(out.Records[0].Data) != "seen:a" || string(out.Records[0].PartitionKey) != "k1" {
		t.Fatalf("emit %+v", out.Records)
	}
	if len(out.Results) != 1 || out.Results[0].Index != 1 || out.Results[0].Status != abi.StatusSkip || string(out.Results[0].Message) != "skipped k2" {
		t.Fatalf("results %+v", out.Results)
	}
	in.Records = append(in.Records, abi.Record{Data: []byte("boom"), SequenceNumber: []byte("77")})
	buf, _ = in.Append(nil)
	if _, err := Invoke(abi.OpHandle, buf); err == nil || !strings.Contains(err.Error(), "panic in handle: boom on 77 (at ") {
		t.Fatalf("panic error %v", err)
	}
	if _, err := Invoke(abi.OpSerialize, buf); err == nil || !strings.Contains(err.Error(), "serialize called with a handle batch") {
		t.Fatalf("op mismatch: %v", err)
	}
	if _, err := Invoke(abi.OpHandle, buf[:20]); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Fatalf("short: %v", err)
	}
	if !strings.Contains(string(DescribeJSON()), `"kinds":["handler"]`) {
		t.Fatalf("describe %s", DescribeJSON())
	}
}

func TestScratch(t *testing.T) {
	st.scratch.reset()
	a := Scratch(10)
	if len(a) != 0 || cap(a) != 10 {
		t.Fatalf("Scratch(10): len %d cap %d", len(a), cap(a))
	}
	a = append(a, "0123456789"...)
	// Slices from one call never overlap, across chunk boundaries too.
	var all [][]byte
	for i := range 200 {
		b := append(Scratch(1000), strings.Repeat(string(rune('a'+i%26)), 1000)...)
		all = append(all, b)
	}
	if string(a) != "0123456789" {
		t.Fatalf("first slice overwritten: %q", a)
	}
	for i, b := range all {
		if b[0] != byte('a'+i%26) || b[999] != byte('a'+i%26) {
			t.Fatalf("slice %d overwritten", i)
		}
	}
	big := Scratch(1 << 20)
	if cap(big) != 1<<20 {
		t.Fatalf("large Scratch cap %d", cap(big))
	}
	chunks := len(st.scratch.chunks)
	st.scratch.reset()
	for range 200 {
		Scratch(1000)
	}
	if len(st.scratch.chunks) != chunks {
		t.Fatalf("chunks not reused: %d, then %d", chunks, len(st.scratch.chunks))
	}
	if Scratch(-1) == nil || cap(Scratch(0)) != 0 {
		t.Fatal("Scratch of a non-positive size")
	}
}
