package host_test

import (
	"context"
	"fmt"

	"github.com/shardwork/shardwork/core/records"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

// A KPL aggregator plugin used through the records.Aggregator interface.
func ExampleLoad() {
	ctx := context.Background()
	path, err := wasmbuild.Go("plugins/examples/kpl") // or a .wasm from make plugins
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := host.Load(ctx, path, host.WithCacheDir(cacheDir), host.WithKinds("aggregator"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	var agg records.Aggregator
	agg, _ = p.Aggregator()
	out, err := agg.Aggregate(ctx, []records.UserRecord{
		{PartitionKey: "a", Data: []byte("123")},
		{PartitionKey: "a", Data: []byte("test")},
	}, records.MaxRecordSize)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %d record holding %d, %x\n", p.Name(), len(out), out[0].Count, out[0].Data)
	// Output: kpl: 1 record holding 2, f3899ac20a01611a0708001a033132331a0808001a047465737444b47432846de9a761c2774e0a3d26e6
}
