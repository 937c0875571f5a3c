package main

import "context"

func (c *cli) plugin(ctx context.Context, args []string) error {
	return usagef("plugin: not available in this build")
}
