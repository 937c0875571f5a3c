package main

import "github.com/shardwork/shardwork/core/records"

// nativeProcessor returns a native processor by name.
func nativeProcessor(name string) (records.Processor, error) {
	return records.ByName(name)
}
