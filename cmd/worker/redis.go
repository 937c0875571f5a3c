package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/shardwork/shardwork/core/checkpoint"
	"github.com/shardwork/shardwork/core/checkpoint/redisstore"
)

// newRedisStore builds the Redis lease and checkpoint store with the
// configured session timeout and heartbeat frequency.
func newRedisStore(rc *redis.Client, app, stream string, cfg *config) (checkpoint.Store, error) {
	var opts []redisstore.Option
	if cfg.isSet("session_timeout") {
		opts = append(opts, redisstore.WithSessionTimeout(cfg.dur("session_timeout")))
	}
	if cfg.isSet("heartbeat_frequency") {
		opts = append(opts, redisstore.WithHeartbeatFrequency(cfg.dur("heartbeat_frequency")))
	}
	return redisstore.New(rc, app, stream, opts...)
}
