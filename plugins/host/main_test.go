package host_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shardwork/shardwork/plugins/host"
	"github.com/shardwork/shardwork/plugins/internal/wasmbuild"
)

func TestMain(m *testing.M) {
	code := m.Run()
	wasmbuild.Cleanup()
	os.Exit(code)
}

// cacheDir is wazero's on-disk compilation cache for the tests. It outlives
// the process (writes are atomic renames, keyed by module hash and wazero
// version), so a re-run skips compiling unchanged plugins.
var cacheDir = filepath.Join(os.TempDir(), "shardwork-wazero-test-cache")

func build(t testing.TB, pkgDir string, extra ...string) string {
	t.Helper()
	p, err := wasmbuild.Go(pkgDir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t testing.TB, path string, opts ...host.Option) *host.Plugin {
	t.Helper()
	p, err := host.Load(context.Background(), path, append([]host.Option{host.WithCacheDir(cacheDir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}
