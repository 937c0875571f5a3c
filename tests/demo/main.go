// Command demo is what `make demo` runs: it starts a local Kinesis
// (kinesalite), produces a sample data set into a local stream with each
// native processor, reads it back with the consumer (memory checkpoints) and
// prints what went through. It exits non-zero if any record was lost,
// changed or duplicated.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/shardwork/shardwork/core/batch"
	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/core/shards"
	"github.com/shardwork/shardwork/tests/harness"
)

func main() {
	copies := flag.Int("copies", 4, "how many times the 500-item sample set is produced per processor")
	shardCount := flag.Int("shards", 2, "shards per stream")
	procs := flag.String("processors", "json,jsonlines,jsonlist,msgpack,kpl-json", "comma-separated processor names")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *copies, *shardCount, splitComma(*procs)); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

type result struct {
	proc                       string
	items, kinesisRecs         int64
	bytes                      int64
	produceTime, consumeTime   time.Duration
	missing, extra, duplicates int
}

func run(ctx context.Context, copies, shardCount int, procs []string) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(root, "testdata", "seed", "benchmark_items.json"))
	if err != nil {
		return err
	}
	var sample []map[string]any
	if err := json.Unmarshal(raw, &sample); err != nil {
		return fmt.Errorf("sample data: %w", err)
	}

	fmt.Println("starting kinesalite (local Kinesis)…")
	kin, err := harness.StartKinesalite(ctx)
	if err != nil {
		return err
	}
	defer kin.Stop()
	client, err := harness.NewClient(ctx, kin.Endpoint)
	if err != nil {
		return err
	}
	fmt.Printf("kinesalite at %s; %d items × %d copies per processor, %d shards per stream\n\n",
		kin.Endpoint, len(sample), copies, shardCount)

	var results []result
	for _, name := range procs {
		proc, err := records.ByName(name)
		if err != nil {
			return err
		}
		stream := "shardwork-demo-" + name
		if err := harness.CreateStream(ctx, client, stream, shardCount); err != nil {
			return err
		}

		// Produce: each item gets a unique id so the read-back can be checked
		// exactly.
		want := make(map[string]string, len(sample)*copies)
		start := time.Now()
		p, err := batch.Open(ctx, client, stream, batch.WithProcessor(proc))
		if err != nil {
			return err
		}
		for c := range copies {
			for i, it := range sample {
				item := make(map[string]any, len(it)+1)
				for k, v := range it {
					item[k] = v
				}
				id := fmt.Sprintf("%d-%d", c, i)
				item["demo_id"] = id
				canon, _ := json.Marshal(item)
				want[id] = string(canon)
				if err := p.PutWithKey(ctx, item, id); err != nil {
					return fmt.Errorf("%s: put: %w", name, err)
				}
			}
		}
		if err := p.Close(ctx); err != nil {
			return fmt.Errorf("%s: not everything was delivered: %w", name, err)
		}
		ps := p.Stats()
		res := result{proc: name, items: ps.RecordsDelivered, kinesisRecs: ps.KinesisRecords, bytes: ps.BytesDelivered, produceTime: time.Since(start)}

		// Consume from TRIM_HORIZON until every item came back.
		start = time.Now()
		c, err := shards.New(client, stream, shards.Processor(proc), shards.SleepWhenCaughtUp(200*time.Millisecond), shards.ShardFetchRate(5))
		if err != nil {
			return err
		}
		seen := make(map[string]int, len(want))
		readCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		got := 0
		for rec, err := range c.Records(readCtx) {
			if err != nil {
				cancel()
				return fmt.Errorf("%s: consume: %w", name, err)
			}
			m, ok := rec.Value.(map[string]any)
			if !ok {
				cancel()
				return fmt.Errorf("%s: record %s/%s decoded to %T, want an object", name, rec.ShardID, rec.SequenceNumber, rec.Value)
			}
			id, _ := m["demo_id"].(string)
			canon, _ := json.Marshal(m)
			if want[id] != string(canon) {
				res.extra++
			}
			seen[id]++
			got++
			if got >= len(want) {
				break
			}
		}
		cancel()
		if err := c.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: close consumer: %w", name, err)
		}
		res.consumeTime = time.Since(start)
		for id := range want {
			switch n := seen[id]; {
			case n == 0:
				res.missing++
			case n > 1:
				res.duplicates += n - 1
			}
		}
		results = append(results, res)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "processor\titems\tKinesis records\tMB\tproduce\tconsume\tmissing\tchanged\tduplicates\t")
	bad := false
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%s\t%d\t%d\t%d\t\n", r.proc, r.items, r.kinesisRecs, float64(r.bytes)/1e6,
			r.produceTime.Round(time.Millisecond), r.consumeTime.Round(time.Millisecond), r.missing, r.extra, r.duplicates)
		bad = bad || r.missing > 0 || r.extra > 0
	}
	tw.Flush()
	if bad {
		return errors.New("some records were lost or changed")
	}
	fmt.Println("\nevery record came back exactly as it was put.")
	return nil
}
