package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// logLatencyCmd summarises the latency the daemon itself logged for its
// requests ("request" lines of its JSON log, latency in milliseconds) with
// a given status: how long the daemon took, apart from any wait in the
// client or in the kernel before the request reached it.
func logLatencyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("log-latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.Int("status", 503, "HTTP status of the requests to summarise")
	path := fs.String("path", ingestPath, "request path to summarise")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		_, _ = fmt.Fprintln(stderr, "responder-load log-latency: want the daemon's log file")
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fail(stderr, fmt.Errorf("open %s: %w", fs.Arg(0), err))
	}
	defer func() { _ = f.Close() }()
	h, err := logLatency(f, *status, *path)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", fs.Arg(0), err))
	}
	b, _ := json.Marshal(h.Summary())
	_, _ = fmt.Fprintln(stdout, string(b))
	return 0
}

func logLatency(r io.Reader, status int, path string) (*histogram, error) {
	var h histogram
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"message":"request"`)) {
			continue
		}
		var e struct {
			Path    string  `json:"path"`
			Status  int     `json:"status"`
			Latency float64 `json:"latency"` // milliseconds, zerolog's default for durations
		}
		if json.Unmarshal(line, &e) != nil || e.Status != status || e.Path != path {
			continue
		}
		h.Record(time.Duration(e.Latency * float64(time.Millisecond)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return &h, nil
}
