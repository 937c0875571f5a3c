package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardwork/shardwork/plugins/conformance"
	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

var cacheDir = filepath.Join(os.TempDir(), "shardwork-wazero-test-cache")

func TestMain(m *testing.M) {
	code := m.Run()
	wasmbuild.Cleanup()
	os.Exit(code)
}

func TestExamplesConform(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		build func() (string, error)
	}{
		{"kpl", func() (string, error) { return wasmbuild.Go("plugins/examples/kpl") }},
		{"msgpack", func() (string, error) { return wasmbuild.Go("plugins/examples/msgpack") }},
		{"enrich", func() (string, error) { return wasmbuild.Go("plugins/examples/enrich") }},
		{"upper (Rust)", func() (string, error) { return wasmbuild.Rust("plugins/examples-rust/upper/upper.rs") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			rep, err := conformance.Check(ctx, path, host.WithCacheDir(cacheDir))
			t.Log(rep.String())
			if err != nil || !rep.Passed() {
				t.Fatalf("not conformant: %v", err)
			}
		})
	}
}

func TestBrokenPluginsReported(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		mode, tags string
		want       string
	}{
		{"oob", "", "outside the guest's"},
		{"badoffset", "", "outside the data area"},
		{"abi2", "", "abi_version() returned 2"},
		{"", "importv2", "built for ABI v2"},
		{"", "nohandle", `no exported function "handle"`},
		{"batcherr", "", "this plugin always fails"},
	}
	for _, c := range cases {
		t.Run(c.mode+c.tags, func(t *testing.T) {
			var extra []string
			opts := []host.Option{host.WithCacheDir(cacheDir)}
			if c.mode == "abi2" {
				extra = append(extra, "-ldflags=-X main.mode="+c.mode)
			} else if c.mode != "" {
				opts = append(opts, host.WithConfig([]byte("mode="+c.mode)))
			}
			if c.tags != "" {
				extra = append(extra, "-tags="+c.tags)
			}
			path, err := wasmbuild.Go("plugins/host/testdata/rawbad", extra...)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := conformance.Check(ctx, path, opts...)
			if !errors.Is(err, conformance.ErrNonConformant) || !strings.Contains(err.Error(), c.want) || rep.Passed() {
				t.Fatalf("error %v, want one containing %q\n%s", err, c.want, rep.String())
			}
		})
	}
	if _, err := conformance.Check(ctx, "/nonexistent/plugin.wasm"); !errors.Is(err, conformance.ErrNonConformant) {
		t.Fatalf("missing file: %v", err)
	}
}

func ExampleCheck() {
	path, err := wasmbuild.Rust("plugins/examples-rust/upper/upper.rs")
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := conformance.Check(context.Background(), path)
	fmt.Println(rep.Description.Name, rep.Passed(), err)
	// Output: upper true <nil>
}
