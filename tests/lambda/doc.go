// Package lambda holds the end-to-end tests of the Lambda bootstrap
// (cmd/lambda): the built bootstrap runs under the AWS Lambda runtime
// interface emulator (aws-lambda-rie, the emulator `sam local` uses), with
// a real kinesalite as Kinesis. Events are built from records read back from
// kinesalite exactly as an event source mapping builds them.
//
//	go test -race ./tests/lambda
package lambda
