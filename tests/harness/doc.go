// Package harness starts the real components shardwork's end-to-end tests
// and demo run against: kinesalite (a local Kinesis, pinned in
// tests/kinesalite/package-lock.json and installed with npm ci) on a free
// loopback port, and Redis (REDIS_URL or 127.0.0.1:6379, else a
// redis-server the harness starts on a free port), and the AWS Lambda
// runtime interface emulator (StartRIE: aws-lambda-rie, installed with go
// install into build/tools, running a built bootstrap on free ports; its
// REPORT lines give cold-start and warm durations).
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := harness.Kinesis(t)       // started once per test binary
//		stream := env.NewStream(t, 4)   // unique, ACTIVE, deleted at cleanup
//		redis := harness.Redis(t)       // fails, never skips, when none can be had
//		_ = redis.URL
//	}
//
// The helpers are safe for concurrent use by parallel tests. Processes are
// started on first use and stopped by Main (or StopAll); they also die with
// the test binary (Pdeathsig).
package harness
