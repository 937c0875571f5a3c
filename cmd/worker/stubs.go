package main

import "context"

func (c *cli) produce(ctx context.Context, args []string) error { return usagef("produce: not available") }
func (c *cli) consume(ctx context.Context, args []string) error { return usagef("consume: not available") }
func (c *cli) runWorker(ctx context.Context, args []string) error { return usagef("run: not available") }
