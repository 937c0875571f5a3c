// Command lambda is shardwork's AWS Lambda bootstrap for the
// provided.al2023 runtime. One binary serves both functions of template.yaml;
// the function's Handler setting (passed to the bootstrap as _HANDLER)
// chooses which:
//
//   - consumer: a Kinesis event from an event source mapping is deaggregated
//     (KPL or the processor's framing), decoded, and handed to a record-handler
//     plugin or a built-in handler. The response's BatchItemFailures names the
//     containing sequence number of the first Kinesis record that failed
//     (handler verdict retry or fail, an undecodable record, or an emitted
//     record that could not be put), so that Lambda retries from there
//     (FunctionResponseTypes: ReportBatchItemFailures). Records the handler
//     emits go to the optional output stream and are delivered before the
//     function returns.
//   - producer: a direct invocation ({"records": [...], "partitionKey": "..."}),
//     an API Gateway proxy event (REST or HTTP API; the body a JSON array or
//     JSON lines) or an SQS event (one record per message) is serialized,
//     aggregated and put into the stream before the function returns. The
//     answer gives counts and names each undelivered record; a payload that
//     cannot be read gets status 400 and a message saying what is wrong. SQS
//     messages that could not be delivered are returned in batchItemFailures.
//
// Everything is built once per cold start: the processor, the plugins (loaded
// from the compilation cache shipped in the package when there is one, else
// compiled into /tmp) and the Kinesis client. Invocations are synchronous:
// nothing is left running between them.
//
// # Environment
//
//	_HANDLER                       consumer | producer (set by Lambda from Handler)
//	SHARDWORK_PROCESSOR            native processor: string, json, jsonlines, jsonlist,
//	                               msgpack, kpl-json (default), kpl-string
//	SHARDWORK_HANDLER_PLUGIN       consumer: record-handler plugin (.wasm); relative
//	                               paths are inside the package (LAMBDA_TASK_ROOT)
//	SHARDWORK_HANDLER_PLUGIN_CONFIG  the handler plugin's configuration (JSON, given to its init)
//	SHARDWORK_SERIALIZER_PLUGIN    serializer plugin replacing the processor's
//	SHARDWORK_AGGREGATOR_PLUGIN    aggregator plugin replacing the processor's
//	SHARDWORK_PLUGIN_TRUSTED       true runs plugins without per-call deadlines: several
//	                               times faster; a guest that never returns is then ended
//	                               by the function's timeout (default false)
//	SHARDWORK_BUILTIN_HANDLER      consumer without a plugin: log (default; each record
//	                               at debug level), forward (to the output stream), discard
//	SHARDWORK_ON_DECODE_ERROR      consumer: fail (default; report the record) or skip
//	                               (log and count it, go on)
//	SHARDWORK_OUTPUT_STREAM        consumer: stream that emitted records go to
//	SHARDWORK_STREAM               producer: stream to write to (required)
//	SHARDWORK_PARTITION_KEY_FIELD  producer: top-level JSON field holding each record's
//	                               partition key (default: a random key per record)
//	SHARDWORK_PUT_ATTEMPTS         PutRecords attempts per record (default 5)
//	SHARDWORK_PLUGIN_CACHE         plugin compilation cache directory (default: the
//	                               package's plugin-cache when present, else
//	                               /tmp/shardwork-plugin-cache)
//	SHARDWORK_LOG_LEVEL            debug, info (default), warn, error; logs are JSON lines
//	AWS_REGION, AWS_ENDPOINT_URL_KINESIS and the other standard SDK variables
//
// # Building
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./cmd/lambda
//
// `make lambda` builds both architectures with the example plugins and their
// precompiled cache (`bootstrap compile-plugins DIR FILE.wasm...`);
// `sam build` runs the Makefile's build-ConsumerFunction and
// build-ProducerFunction targets.
package main
