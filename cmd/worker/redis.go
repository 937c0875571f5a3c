//go:build shardwork_libs

package main

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
)

// newRedisStore builds the Redis lease and checkpoint store.
func newRedisStore(rc *redis.Client, app, stream string, cfg *config) (checkpoint.Store, error) {
	return nil, fmt.Errorf("the redis checkpointer is not available in this build")
}
