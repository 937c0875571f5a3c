package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "h.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "plugin-cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{
		"_HANDLER": "consumer", "LAMBDA_TASK_ROOT": dir, "SHARDWORK_HANDLER_PLUGIN": "h.wasm",
		"SHARDWORK_ON_DECODE_ERROR": "skip", "SHARDWORK_PLUGIN_TRUSTED": "true", "SHARDWORK_LOG_LEVEL": "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.processor != "kpl-json" || c.handlerPlugin != filepath.Join(dir, "h.wasm") || !c.skipUndecodable || !c.pluginTrusted ||
		c.cacheDir != filepath.Join(dir, "plugin-cache") || c.shippedCache != c.cacheDir || c.builtin != builtinLog || c.putAttempts != 5 {
		t.Errorf("config %+v", c)
	}
	c, err = loadConfig(envOf(map[string]string{"_HANDLER": "producer", "SHARDWORK_STREAM": "s", "LAMBDA_TASK_ROOT": t.TempDir()}))
	if err != nil || c.cacheDir != filepath.Join(os.TempDir(), "shardwork-plugin-cache") {
		t.Errorf("config %+v, %v", c, err)
	}

	for _, bad := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{}, "_HANDLER"},
		{map[string]string{"_HANDLER": "bootstrap"}, "_HANDLER"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_PROCESSOR": "avro"}, "SHARDWORK_PROCESSOR"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_HANDLER_PLUGIN": "/no/such.wasm"}, "SHARDWORK_HANDLER_PLUGIN"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_HANDLER_PLUGIN_CONFIG": "{"}, "SHARDWORK_HANDLER_PLUGIN_CONFIG"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_BUILTIN_HANDLER": "forward"}, "SHARDWORK_BUILTIN_HANDLER"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_BUILTIN_HANDLER": "print"}, "SHARDWORK_BUILTIN_HANDLER"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_ON_DECODE_ERROR": "ignore"}, "SHARDWORK_ON_DECODE_ERROR"},
		{map[string]string{"_HANDLER": "consumer", "SHARDWORK_PLUGIN_TRUSTED": "yes"}, "SHARDWORK_PLUGIN_TRUSTED"},
		{map[string]string{"_HANDLER": "producer"}, "SHARDWORK_STREAM"},
		{map[string]string{"_HANDLER": "producer", "SHARDWORK_STREAM": "s", "SHARDWORK_PUT_ATTEMPTS": "0"}, "SHARDWORK_PUT_ATTEMPTS"},
		{map[string]string{"_HANDLER": "producer", "SHARDWORK_STREAM": "s", "SHARDWORK_LOG_LEVEL": "loud"}, "SHARDWORK_LOG_LEVEL"},
	} {
		_, err := loadConfig(envOf(bad.env))
		if !errors.Is(err, errInvalidConfig) || !strings.Contains(err.Error(), bad.name+"=") {
			t.Errorf("%v: error %v, want one naming %s", bad.env, err, bad.name)
		}
	}
}
