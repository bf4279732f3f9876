package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

// slackReport is what the fake Slack saw, written when it stops.
type slackReport struct {
	Requests    int64             `json:"requests"`
	Status      map[string]int64  `json:"status"` // by HTTP status, as the daemon got it
	RateLimited int64             `json:"rate_limited"`
	Channels    map[string]string `json:"channels"` // ID -> name
	Posts       []slackPost       `json:"posts"`    // accepted calls, in order
}

type slackPost struct {
	Method   string `json:"method"`
	Channel  string `json:"channel"`
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts,omitempty"`
	At       int64  `json:"at_unix_nano"`
}

// slackFakeCmd runs slacktest with its strict per-channel rate behind a
// loopback port of our choosing, counts the status of every answer (the
// 429s above all), and writes what it saw to --report when stopped.
func slackFakeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("slack-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9097", "address to listen on (loopback)")
	token := fs.String("token", "xoxb-bench", "bot token the fake accepts")
	channels := fs.Int("channels", 50, "channels to create, named PREFIX01, PREFIX02, ...")
	prefix := fs.String("channel-prefix", "storm-", "prefix of the channel names")
	minGap := fs.Duration("min-gap", time.Second, "StrictRate: a message to a channel sooner than this after the last is answered 429")
	reportPath := fs.String("report", "", "file to write the report to when stopped")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fake := slacktest.New(*token)
	defer fake.Close()
	fake.StrictRate(*minGap)
	names := map[string]string{}
	for i := 1; i <= *channels; i++ {
		name := fmt.Sprintf("%s%02d", *prefix, i)
		names[fake.AddChannel(name)] = name
	}
	target, err := url.Parse(fake.URL())
	if err != nil {
		return fail(stderr, fmt.Errorf("fake slack url: %w", err))
	}
	target.Path = ""
	counts := &statusCounts{byCode: map[int]int64{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			counts.add(resp.StatusCode)
			return nil
		},
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return fail(stderr, fmt.Errorf("listen on %s: %w", *listen, err))
	}
	hs := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	_, _ = fmt.Fprintf(stdout, "slack-fake serving http://%s/api/ (pid %d), %d channels, min gap %s\n", ln.Addr(), os.Getpid(), *channels, *minGap)
	code := serveUntil(ctx, hs, ln, stderr)
	if *reportPath == "" {
		return code
	}
	rep := slackReport{Status: map[string]int64{}, Channels: names}
	counts.mu.Lock()
	for c, n := range counts.byCode {
		rep.Status[strconv.Itoa(c)] = n
		rep.Requests += n
	}
	counts.mu.Unlock()
	rep.RateLimited = rep.Status[strconv.Itoa(http.StatusTooManyRequests)]
	for _, p := range fake.Posts() {
		rep.Posts = append(rep.Posts, slackPost{Method: p.Method, Channel: p.Channel, TS: p.TS, ThreadTS: p.ThreadTS, At: p.At.UnixNano()})
	}
	if err := writeJSON(*reportPath, rep); err != nil {
		return fail(stderr, err)
	}
	return code
}

type statusCounts struct {
	mu     sync.Mutex
	byCode map[int]int64
}

func (s *statusCounts) add(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byCode[code]++
}
