package host

import (
	"context"
	"testing"

	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

// BenchmarkInstantiate measures making one more instance of a loaded plugin
// (what the pool pays after a discard or recycle).
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	kpl, err := wasmbuild.Go("plugins/examples/kpl")
	if err != nil {
		b.Fatal(err)
	}
	rust, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		b.Fatal(err)
	}
	for name, path := range map[string]string{"kpl-go": kpl, "upper-rust": rust} {
		p, err := Load(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				inst, err := p.instantiate(ctx, false)
				if err != nil {
					b.Fatal(err)
				}
				inst.close(ctx)
			}
		})
		p.Close(ctx)
	}
}
