// Command worker is shardwork's command-line tool and long-running worker
// for AWS Kinesis Data Streams.
//
//	worker produce --stream S [--input FILE|-] [--processor P] [--partition-key-field F] [--create-stream --shards N]
//	worker consume --stream S [--processor P] [--handler PLUGIN.wasm] [--output-stream S2]
//	               [--checkpointer memory|redis|redis://…] [--app NAME]
//	               [--iterator-type T | --at-timestamp TIME] [--max-records N] [--idle-exit D] [--meta]
//	worker run --config worker.yaml [--check]
//	worker decode --processor P [--input FILE] [--meta] [--raw]
//	worker stream create|describe|delete NAME [--shards N]
//	worker plugin check|describe|compile PLUGIN.wasm...
//	worker version
//
// Processors are named string, json, jsonlines, jsonlist, msgpack, kpl-json,
// kpl-string (byte-compatible with async-kinesis) or wasm:PATH for a
// serializer/aggregator plugin.
//
// # Configuration
//
// Every setting has a flag (--log-level), an environment variable
// (SHARDWORK_LOG_LEVEL) and a key in the optional YAML file given with
// --config or SHARDWORK_CONFIG (log_level). Flags win over the environment,
// which wins over the file. AWS settings also follow the SDK's chain:
// AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_KINESIS, shared config files and
// instance roles; REDIS_URL is read for redis_url. Every value is checked
// before any work starts: an invalid one exits with status 2 and a single
// line naming the key, the value and where it came from. So do a missing or
// unloadable plugin, an unknown processor and an unreachable Redis.
//
// # Exit status
//
// 0 on success (and after a graceful stop on SIGTERM or SIGINT), 1 when the
// work failed (records not delivered, Kinesis errors), 2 for usage and
// configuration errors.
//
// # Running
//
// run starts one consumer per pipeline of the config file. Each pipeline
// reads its input stream under leases of its own app name (Redis leases let
// several workers share a stream), decodes records with its processor,
// calls its handler plugin once per batch and puts what the handler emits
// into its output stream; a batch is checkpointed only after its output is
// delivered. /healthz answers 200 when every pipeline holds at least one
// shard lease and Kinesis answers, 503 otherwise; /metrics serves
// Prometheus metrics. On SIGTERM or SIGINT the worker stops fetching,
// finishes in-flight batches, flushes outputs, writes final checkpoints,
// releases its leases and leaves the worker set, so other workers take its
// shards at once; it exits 0 when that finishes within shutdown_timeout.
//
// Logs go to stderr through log/slog: text on a terminal, JSON otherwise
// (log_format), at log_level.
package main
