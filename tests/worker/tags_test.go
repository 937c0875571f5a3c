//go:build shardwork_libs

package worker_test

func init() { buildTags = "shardwork_libs" }
