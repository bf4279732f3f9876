// Command responder-load measures Responder: a load generator that posts
// Alertmanager webhooks (closed or open loop), a decode-only baseline
// server, a strict fake Slack, a database generator, and the checks the
// bench script (.ci/bench) builds its figures from. See docs/benchmarks.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
