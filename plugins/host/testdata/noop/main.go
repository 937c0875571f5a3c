// Command noop is a benchmark fixture: a handler that does nothing, so a
// benchmark over it measures the host's and the SDK's overhead.
package main

import "github.com/shardwork/shardwork/plugins/abi/guest"

func init() {
	guest.Describe(guest.Info{Name: "noop", Version: "0"})
	guest.RegisterHandler(func(*guest.Record, guest.Emitter) guest.Result { return guest.Result{} })
}

func main() {}
