package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/handlers"
)

// baselineCmd serves handlers.NewBaseline: the daemon's ingest route and
// decoder without the store, logging each request as the daemon does.
func baselineCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9096", "address to listen on (loopback)")
	bodyLimit := fs.Int64("body-limit", 1<<20, "largest body accepted, bytes (the daemon's default)")
	tokenOf := tokenFlags(fs, "bearer token required with the ingest scope (empty: none, as the daemon on loopback)")
	level := fs.String("log-level", "info", "level of the request log written to stderr (the daemon's default: info)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := tokenOf()
	if err != nil {
		return fail(stderr, err)
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		return fail(stderr, fmt.Errorf("log level %q: %w", *level, err))
	}
	log := zerolog.New(stderr).Level(lvl).With().Timestamp().Str("component", "baseline").Logger()
	cfg := handlers.Config{BodyLimit: *bodyLimit, RetryAfter: time.Second}
	if token != "" {
		cfg.Tokens = []handlers.Token{{Name: "bench", Value: token, Scopes: []string{handlers.ScopeIngest}}}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return fail(stderr, fmt.Errorf("listen on %s: %w", *listen, err))
	}
	// The daemon's default server limits.
	hs := &http.Server{
		Handler:           handlers.NewBaseline(cfg, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	_, _ = fmt.Fprintf(stdout, "baseline serving http://%s (pid %d)\n", ln.Addr(), os.Getpid())
	return serveUntil(ctx, hs, ln, stderr)
}

// serveUntil serves until ctx ends, then shuts the server down.
func serveUntil(ctx context.Context, hs *http.Server, ln net.Listener, stderr io.Writer) int {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fail(stderr, fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = hs.Close()
		return fail(stderr, fmt.Errorf("shutdown: %w", err))
	}
	return 0
}

// portCmd prints a free loopback port. Another process may take it before
// it is used; the bench script runs alone on loopback.
func portCmd(ctx context.Context, stdout, stderr io.Writer) int {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fail(stderr, fmt.Errorf("find a free port: %w", err))
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	_, _ = fmt.Fprintln(stdout, port)
	return 0
}
