package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/responder-sre/responder/store/postgres/pgtest"
)

// postgresCmd runs a PostgreSQL cluster for the replica figures (Debian's
// package, a temporary directory, a Unix socket only), with --databases
// empty databases whose DSNs it writes to --out, one per line, until
// stopped.
func postgresCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("postgres", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("databases", 1, "empty databases to create")
	out := fs.String("out", "", "file to write their DSNs to, one per line")
	if err := fs.Parse(args); err != nil || *out == "" {
		return 2
	}
	pg, err := pgtest.Start()
	if err != nil {
		return fail(stderr, err)
	}
	defer pg.Stop()
	var dsns []string
	for i := 1; i <= *n; i++ {
		dsn, err := pg.CreateDatabase(ctx, fmt.Sprintf("bench%d", i))
		if err != nil {
			return fail(stderr, err)
		}
		dsns = append(dsns, dsn)
	}
	if err := writeFile(*out, []byte(strings.Join(dsns, "\n")+"\n")); err != nil {
		return fail(stderr, err)
	}
	_, _ = fmt.Fprintf(stdout, "postgres ready (pid %d), %d databases in %s\n", os.Getpid(), *n, *out)
	<-ctx.Done()
	return 0
}

// leaseHolderCmd prints the pid of the replica holding the delivery lease
// (its holder is "host/pid"), waiting up to --timeout for one to hold it.
func leaseHolderCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lease-holder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "the replicas' database")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for a holder")
	if err := fs.Parse(args); err != nil || *dsn == "" {
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fail(stderr, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var holder string
		err := conn.QueryRow(ctx, `SELECT holder FROM leases WHERE name = 'outbox' AND expires_at > clock_timestamp()`).Scan(&holder)
		if err == nil {
			if _, pid, ok := strings.Cut(holder, "/"); ok {
				_, _ = fmt.Fprintln(stdout, pid)
				return 0
			}
		}
		select {
		case <-ctx.Done():
			return fail(stderr, fmt.Errorf("no replica holds the delivery lease: %w", ctx.Err()))
		case <-tick.C:
		}
	}
}

// failoverCmd reads the fake Slack's report and prints the seconds from
// --killed-at (unix nanoseconds) to the first message accepted after it:
// how long deliveries stopped when the replica delivering them died.
func failoverCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	report := fs.String("slack", "", "the fake Slack's report")
	killed := fs.String("killed-at", "", "when the replica was killed, unix nanoseconds")
	if err := fs.Parse(args); err != nil || *report == "" || *killed == "" {
		return 2
	}
	at, err := strconv.ParseInt(*killed, 10, 64)
	if err != nil {
		return fail(stderr, fmt.Errorf("killed-at: %w", err))
	}
	b, err := readFile(*report)
	if err != nil {
		return fail(stderr, err)
	}
	var r slackReport
	if err := json.Unmarshal(b, &r); err != nil {
		return fail(stderr, err)
	}
	for _, p := range r.Posts {
		if p.At > at {
			_, _ = fmt.Fprintf(stdout, `{"failover_seconds": %.3f}`+"\n", time.Duration(p.At-at).Seconds())
			return 0
		}
	}
	return fail(stderr, fmt.Errorf("no message accepted after the kill"))
}
