package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: responder-load COMMAND [flags]   (COMMAND -h for its flags)

  run          post Alertmanager webhooks, closed loop (--connections) or open loop (--rate), and report
               accepted alerts/s, status counts and latency percentiles (the default command)
  baseline     serve the ingest route with the daemon's decoder, storing nothing (the ceiling)
  slack-fake   serve the strict fake Slack (one message per second per channel) until stopped
  gendb        write a database of a given size with the store package (for the startup figure)
  startup      start a command on a cold page cache and time it until /readyz answers 200
  wait-ready   wait until a URL's /readyz (or --path) answers 200
  wait-drain   wait until the daemon's outbox is empty (its /metrics)
  storm-check  check a storm run: incidents, lost alerts, Slack rate and announcement delay
  stat         the median (or min, max) of a field over JSON reports
  log-latency  percentiles of the latency the daemon logged for requests of one status
  port         print a free TCP port on 127.0.0.1
  postgres     run a PostgreSQL cluster with empty databases for the replica figures, until stopped
  lease-holder print the pid of the replica holding the delivery lease
  failover     seconds from a replica's kill to the fake Slack's next accepted message
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return loadCmd(ctx, args, stdout, stderr)
	case "baseline":
		return baselineCmd(ctx, args, stdout, stderr)
	case "slack-fake":
		return slackFakeCmd(ctx, args, stdout, stderr)
	case "gendb":
		return gendbCmd(ctx, args, stdout, stderr)
	case "startup":
		return startupCmd(ctx, args, stdout, stderr)
	case "wait-ready":
		return waitReadyCmd(ctx, args, stdout, stderr)
	case "wait-drain":
		return waitDrainCmd(ctx, args, stdout, stderr)
	case "storm-check":
		return stormCheckCmd(ctx, args, stdout, stderr)
	case "stat":
		return statCmd(args, stdout, stderr)
	case "log-latency":
		return logLatencyCmd(args, stdout, stderr)
	case "port":
		return portCmd(ctx, stdout, stderr)
	case "postgres":
		return postgresCmd(ctx, args, stdout, stderr)
	case "lease-holder":
		return leaseHolderCmd(ctx, args, stdout, stderr)
	case "failover":
		return failoverCmd(args, stdout, stderr)
	case "help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	}
	_, _ = fmt.Fprintf(stderr, "responder-load: unknown command %q\n%s", cmd, usage)
	return 2
}

// readFile reads a file named on the command line.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the path is the operator's own argument
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// writeFile writes a report named on the command line.
func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// tokenFlags adds --token and --token-file to fs; the function returned
// gives the token (from the file when one is named), after fs.Parse.
func tokenFlags(fs *flag.FlagSet, usage string) func() (string, error) {
	token := fs.String("token", "", usage)
	file := fs.String("token-file", "", "file holding the token (instead of --token, to keep it off the command line)")
	return func() (string, error) {
		if *file == "" {
			return *token, nil
		}
		b, err := readFile(*file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
}

func fail(stderr io.Writer, err error) int {
	_, _ = fmt.Fprintf(stderr, "responder-load: %v\n", err)
	return 1
}
