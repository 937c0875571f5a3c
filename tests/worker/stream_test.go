package worker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shardwork/shardwork/tests/harness"
)

type streamDesc struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	OpenShards int    `json:"open_shards"`
	Shards     []struct {
		ID              string `json:"id"`
		StartingHashKey string `json:"starting_hash_key"`
		EndingHashKey   string `json:"ending_hash_key"`
		Closed          bool   `json:"closed"`
	} `json:"shards"`
}

func TestStreamCreateDescribeDelete(t *testing.T) {
	e := harness.Kinesis(t)
	env := kinesisEnv(e)
	name := harness.UniqueName(t)

	r := worker(t, env, nil, "stream", "create", name, "--shards", "3")
	mustOK(t, r, "stream create")
	var d streamDesc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stream create output is not JSON: %v\n%s", err, r.stdout)
	}
	if d.Name != name || d.Status != "ACTIVE" || d.OpenShards != 3 || len(d.Shards) != 3 {
		t.Fatalf("after create: %+v", d)
	}
	if d.Shards[0].StartingHashKey != "0" || d.Shards[2].EndingHashKey != "340282366920938463463374607431768211455" {
		t.Errorf("hash key ranges do not cover the key space: %+v", d.Shards)
	}

	// The endpoint and stream from a config file, the shard count from env.
	cfgFile := writeFile(t, "w.yaml", "endpoint: "+e.Endpoint+"\nstream: "+name+"\nlog_level: debug\n")
	r = worker(t, []string{"AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:1"}, nil, "stream", "describe", "--config", cfgFile)
	if r.code == 0 {
		t.Fatalf("env endpoint must win over the config file; describe succeeded against the file's endpoint")
	}
	r = worker(t, nil, nil, "stream", "describe", "--config", cfgFile)
	mustOK(t, r, "stream describe from config file")
	var d2 streamDesc
	if err := json.Unmarshal([]byte(r.stdout), &d2); err != nil {
		t.Fatal(err)
	}
	if d2.Name != name || len(d2.Shards) != 3 {
		t.Fatalf("describe: %+v", d2)
	}

	r = worker(t, env, nil, "stream", "create", "--stream", name)
	if r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second create: exit %d, stderr %q", r.code, r.stderr)
	}

	r = worker(t, append(env, "SHARDWORK_STREAM="+name), nil, "stream", "delete")
	mustOK(t, r, "stream delete")
	r = worker(t, env, nil, "stream", "describe", name)
	if r.code != 1 || !strings.Contains(r.stderr, "stream "+name+" not found") {
		t.Fatalf("describe after delete: exit %d, stderr %q", r.code, r.stderr)
	}
}
