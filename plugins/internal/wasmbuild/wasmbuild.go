// Package wasmbuild builds the plugins' WebAssembly files for tests and
// benchmarks: Go guests with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared and
// Rust guests with a rustc that has the wasm32-unknown-unknown target. Each
// distinct build runs once per process; the outputs live in one temporary
// directory removed by Cleanup.
package wasmbuild

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	mu     sync.Mutex
	dir    string
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

func outDir() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "shardwork-wasm-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	return dir, nil
}

// Cleanup removes the build directory; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
		builds = map[string]*build{}
	}
}

func once(key string, f func(out string) error, name string) (string, error) {
	mu.Lock()
	b, ok := builds[key]
	if !ok {
		b = &build{}
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		d, err := outDir()
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(d, fmt.Sprintf("%s-%x.wasm", name, sha256.Sum256([]byte(key)))[:len(name)+13]+".wasm")
		if err := f(out); err != nil {
			b.err = err
			return
		}
		b.path = out
	})
	return b.path, b.err
}

// ModuleRoot is the directory holding the module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// Go builds the Go plugin in pkgDir (relative to the module root, e.g.
// "plugins/examples/kpl") and returns the .wasm path. extra are additional
// go build flags (e.g. "-tags=x", "-ldflags=-X main.mode=y").
func Go(pkgDir string, extra ...string) (string, error) {
	key := "go:" + pkgDir + ":" + strings.Join(extra, " ")
	return once(key, func(out string) error {
		root, err := ModuleRoot()
		if err != nil {
			return err
		}
		args := append([]string{"build", "-buildmode=c-shared", "-trimpath", "-o", out}, extra...)
		args = append(args, "./"+filepath.ToSlash(pkgDir))
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("GOOS=wasip1 GOARCH=wasm go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}, filepath.Base(pkgDir))
}

// Rustc finds a rustc that can build for wasm32-unknown-unknown: $RUSTC,
// then /usr/bin/rustc (Debian's, with libstd-rust-dev-wasm32), then rustc
// on PATH. The error says how to install one.
func Rustc() (string, error) {
	var cands []string
	if r := os.Getenv("RUSTC"); r != "" {
		cands = append(cands, r)
	}
	cands = append(cands, "/usr/bin/rustc")
	if p, err := exec.LookPath("rustc"); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		out, err := exec.Command(c, "--print", "sysroot").Output()
		if err != nil {
			continue
		}
		sysroot := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(sysroot, "lib", "rustlib", "wasm32-unknown-unknown")); err == nil {
			return c, nil
		}
	}
	return "", errors.New("no rustc with the wasm32-unknown-unknown target found (tried $RUSTC, /usr/bin/rustc, PATH); install it with: apt-get install -y rustc libstd-rust-dev-wasm32 lld")
}

// Rust builds the single-file Rust plugin src (relative to the module root)
// for wasm32-unknown-unknown and returns the .wasm path.
func Rust(src string) (string, error) {
	return once("rust:"+src, func(out string) error {
		rustc, err := Rustc()
		if err != nil {
			return err
		}
		root, err := ModuleRoot()
		if err != nil {
			return err
		}
		args := []string{"--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "--edition", "2021",
			"-C", "opt-level=s", "-C", "panic=abort", "-C", "strip=symbols", "-o", out, filepath.Join(root, src)}
		cmd := exec.Command(rustc, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", rustc, strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}, strings.TrimSuffix(filepath.Base(src), ".rs"))
}
