// Package checkpointtest is the conformance suite every checkpoint.Store
// passes: lease take, hold, expiry and fencing, zombie writes, checkpoint
// ordering, the Finished flag, release, listing, the worker registry and
// concurrent takes. A new store (DynamoDB, say) is tested by handing Run a
// factory:
//
//	func TestConformance(t *testing.T) {
//		checkpointtest.Run(t, func(t *testing.T, cfg checkpointtest.Config) []checkpoint.Store {
//			// return cfg.Workers stores with distinct worker ids that share
//			// one fresh (application, stream) and use cfg's timing
//		})
//	}
//
// Time-dependent cases wait on conditions (polling the store), never on
// fixed sleeps; wrap each case in testing/synctest with WithWrap to run them
// on fake time (the memory store does).
package checkpointtest
