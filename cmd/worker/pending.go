//go:build !shardwork_libs

package main

import "context"

// Without the producer and consumer packages these commands are absent.

func (c *cli) produce(ctx context.Context, args []string) error { return usagef("produce: not built") }
func (c *cli) consume(ctx context.Context, args []string) error { return usagef("consume: not built") }
func (c *cli) runWorker(ctx context.Context, args []string) error { return usagef("run: not built") }
