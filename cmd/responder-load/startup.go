package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// startupReport is one timed start.
type startupReport struct {
	ReadyMS   float64 `json:"ready_ms"`
	ColdCache string  `json:"cold_cache"` // how the page cache was emptied
	Command   string  `json:"command"`
}

// startupCmd empties the page cache (drop_caches when permitted, else
// evicting the named files), starts the command, and times it from the
// start until GET /readyz answers 200; then it stops the command with
// SIGTERM and waits for it.
func startupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:9095", "base URL the command serves")
	cold := fs.Bool("cold", true, "empty the page cache first")
	var files multiFlag
	fs.Var(&files, "file", "file to evict from the page cache when drop_caches is not permitted (repeatable)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for ready after this")
	logPath := fs.String("log", "", "file for the command's output (default: discarded)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if len(argv) == 0 {
		_, _ = fmt.Fprintln(stderr, "responder-load startup: give the command after --")
		return 2
	}
	rep := startupReport{ColdCache: "none (warm)", Command: strings.Join(argv, " ")}
	if *cold {
		rep.ColdCache = emptyPageCache(append([]string{argv[0]}, files...))
	}
	out := io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath) //nolint:gosec // the operator's own file
		if err != nil {
			return fail(stderr, fmt.Errorf("create %s: %w", *logPath, err))
		}
		defer func() { _ = f.Close() }()
		out = f
	}
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec,noctx // the operator's own command, stopped by SIGTERM below
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(stderr, fmt.Errorf("start %s: %w", argv[0], err))
	}
	exited := make(chan struct{}) // closed when the command has exited
	go func() { _ = cmd.Wait(); close(exited) }()
	ready, err := pollReady(ctx, *base, "/readyz", *timeout, exited)
	elapsed := time.Since(start)
	stopErr := stopProcess(cmd, exited, 30*time.Second)
	if err != nil {
		return fail(stderr, err)
	}
	if stopErr != nil {
		_, _ = fmt.Fprintf(stderr, "responder-load startup: %v\n", stopErr)
	}
	if !ready {
		return fail(stderr, fmt.Errorf("not ready after %s", *timeout))
	}
	rep.ReadyMS = round3(float64(elapsed) / 1e6)
	if *asJSON {
		b, _ := json.Marshal(rep)
		_, _ = fmt.Fprintln(stdout, string(b))
		return 0
	}
	_, _ = fmt.Fprintf(stdout, "ready after %.1f ms (page cache: %s)\n", rep.ReadyMS, rep.ColdCache)
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// emptyPageCache drops the whole page cache when permitted (root), else
// evicts the given files, and says which it did.
func emptyPageCache(files []string) string {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err == nil {
		return "drop_caches"
	}
	var evicted []string
	for _, f := range files {
		if path, err := exec.LookPath(f); err == nil {
			f = path
		}
		if evictFile(f) == nil {
			evicted = append(evicted, f)
		}
	}
	if len(evicted) == 0 {
		return "none (drop_caches not permitted, eviction failed): warm"
	}
	return "fadvise(DONTNEED) of " + strings.Join(evicted, ", ")
}

// pollReady asks base+path (the daemon's /readyz) every 2 ms until it
// answers 200, the process exits, or timeout passes.
func pollReady(ctx context.Context, base, path string, timeout time.Duration, exited <-chan struct{}) (bool, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := strings.TrimRight(base, "/") + path
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false, errors.New("the command exited before it was ready (see its log)")
		case <-ctx.Done():
			return false, ctx.Err()
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, fmt.Errorf("build request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false, nil
}

// stopProcess sends SIGTERM and waits; after grace it kills.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = cmd.Process.Kill()
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("pid %d ignored SIGTERM for %s: killed", cmd.Process.Pid, grace)
	}
}
