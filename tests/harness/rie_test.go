package harness

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want Report
	}{
		{"REPORT RequestId: abc\tInit Duration: 12.50 ms\tDuration: 3.25 ms\tBilled Duration: 4 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t", true,
			Report{RequestID: "abc", InitDuration: 12500 * time.Microsecond, Cold: true, Duration: 3250 * time.Microsecond, BilledDuration: 4 * time.Millisecond}},
		{"REPORT RequestId: def\tDuration: 0.91 ms\tBilled Duration: 1 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t", true,
			Report{RequestID: "def", Duration: 910 * time.Microsecond, BilledDuration: time.Millisecond}},
		{"START RequestId: abc Version: $LATEST", false, Report{}},
		{"REPORT RequestId: x\tMemory Size: 1 MB", false, Report{}},
	} {
		got, ok := ParseReport(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseReport(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestRIE runs the real bootstrap under the real emulator: a cold then a
// warm invocation, each with its REPORT line.
func TestRIE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot, err := BuildBootstrap(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rie, err := StartRIE(ctx, RIEConfig{Bootstrap: boot, Handler: "consumer",
		Env: []string{"SHARDWORK_BUILTIN_HANDLER=discard", "SHARDWORK_PROCESSOR=string"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Stop()
	ev := `{"Records":[{"eventID":"shardId-000000000000:1","eventSource":"aws:kinesis","kinesis":{"partitionKey":"k","sequenceNumber":"1","data":"aGVsbG8=","approximateArrivalTimestamp":1700000000}}]}`
	for i := 0; i < 2; i++ {
		body, err := rie.Invoke(ctx, []byte(ev))
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			BatchItemFailures []any `json:"batchItemFailures"`
		}
		if err := json.Unmarshal(body, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invocation %d: %s (%v)\n%s", i, body, err, rie.Output())
		}
	}
	reps, err := rie.WaitReports(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reps[0].Cold || reps[0].InitDuration <= 0 || reps[1].Cold || reps[1].Duration <= 0 {
		t.Errorf("reports %+v: want a cold first invocation with an init duration, then a warm one", reps)
	}
	if !strings.Contains(rie.Output(), `"msg":"kinesis batch"`) {
		t.Errorf("the function's log is not in the emulator output:\n%s", rie.Output())
	}
}

// TestRIEInitFailure: a bootstrap that exits during init gives an error the
// test can see, with the function's message.
func TestRIEInitFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot, err := BuildBootstrap(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rie, err := StartRIE(ctx, RIEConfig{Bootstrap: boot, Handler: "no-such-handler"})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Stop()
	body, err := rie.Invoke(ctx, []byte(`{}`))
	var ie *InvokeError
	if !errors.As(err, &ie) && !strings.Contains(string(body), "errorType") {
		t.Fatalf("want a failed invocation, got %s (%v)", body, err)
	}
	if err := rie.WaitOutput(ctx, `_HANDLER="no-such-handler"`); err != nil {
		t.Errorf("the bootstrap's init error is not in the output: %v", err)
	}
}
