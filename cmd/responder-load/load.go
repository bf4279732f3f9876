package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const ingestPath = "/api/v1/alerts/alertmanager"

// alertmanagerPath is Alertmanager's own ingest (--api alertmanager):
// what Prometheus posts its alerts to, kept in memory.
const alertmanagerPath = "/api/v2/alerts"

// loadConfig is what one load run does.
type loadConfig struct {
	url           string
	token         string
	connections   int
	rate          float64 // alerts per second; 0 is closed loop
	duration      time.Duration
	alerts        int64 // alerts to send in all; 0 for as many as the duration allows
	alertsPerBody int
	groups        int
	fingerprints  int
	severity      string
	run           string
	api           string // responder (webhooks) or alertmanager (its /api/v2/alerts)
	timeout       time.Duration
	retry         bool
	pid           int
	rssEvery      time.Duration
}

func (c *loadConfig) requests() int64 {
	if c.alerts <= 0 {
		return 0
	}
	return (c.alerts + int64(c.alertsPerBody) - 1) / int64(c.alertsPerBody)
}

func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadConfig
	fs.StringVar(&c.url, "url", "http://127.0.0.1:9095", "base URL of the daemon (or baseline)")
	token := tokenFlags(fs, "bearer token with the ingest scope")
	fs.IntVar(&c.connections, "connections", 64, "connections (closed loop: each sends its next request when the last is answered; open loop: the most requests in flight)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: alerts per second on a fixed timetable (0: closed loop)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to send")
	fs.Int64Var(&c.alerts, "alerts", 0, "alerts to send in all, then stop (0: until the duration ends)")
	fs.IntVar(&c.alertsPerBody, "alerts-per-body", 2, "alerts in each webhook body")
	fs.IntVar(&c.groups, "groups", 50, "Alertmanager groups (incidents) the requests are spread over")
	fs.IntVar(&c.fingerprints, "fingerprints", 0, "distinct alerts in all, re-sent in turn (0: every alert is new)")
	fs.StringVar(&c.severity, "severity", "warning", "severity label of every alert")
	fs.StringVar(&c.run, "run", "", "tag in the group labels, to keep the groups of several runs apart")
	fs.StringVar(&c.api, "api", "responder", "what the URL serves: responder (Alertmanager webhooks to "+ingestPath+
		") or alertmanager (the same alerts posted to Alertmanager's own "+alertmanagerPath+", as Prometheus does)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&c.retry, "retry", false, "resend a request answered 503 after its Retry-After, as Alertmanager does")
	fs.IntVar(&c.pid, "pid", 0, "process whose resident memory is sampled from /proc (0: none)")
	fs.DurationVar(&c.rssEvery, "rss-every", 100*time.Millisecond, "how often the resident memory is sampled")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of text")
	jsonOut := fs.String("json-out", "", "also write the JSON report to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if c.token, err = token(); err != nil {
		_, _ = fmt.Fprintf(stderr, "responder-load: %v\n", err)
		return 2
	}
	if c.api != "responder" && c.api != "alertmanager" {
		_, _ = fmt.Fprintf(stderr, "responder-load: --api %q: want responder or alertmanager\n", c.api)
		return 2
	}
	if c.connections < 1 || c.duration <= 0 || c.rate < 0 || c.timeout <= 0 {
		_, _ = fmt.Fprintln(stderr, "responder-load: --connections, --duration and --timeout must be above 0, --rate at least 0")
		return 2
	}
	p, err := newPayloads(c.alertsPerBody, c.groups, c.fingerprints, c.severity, c.run, time.Now().Add(-time.Minute))
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "responder-load: %v\n", err)
		return 2
	}
	rep, err := runLoad(ctx, c, p)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "responder-load: %v\n", err)
		return 1
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			_, _ = fmt.Fprintf(stderr, "responder-load: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	rep.print(stdout)
	return 0
}

// report is what a load run measured.
type report struct {
	Mode          string  `json:"mode"` // closed or open
	URL           string  `json:"url"`
	Connections   int     `json:"connections"`
	AlertsPerBody int     `json:"alerts_per_body"`
	Groups        int     `json:"groups"`
	Fingerprints  int     `json:"fingerprints"`
	TargetRate    float64 `json:"target_alerts_per_sec,omitempty"`
	Seconds       float64 `json:"seconds"`

	Requests          int64            `json:"requests"` // attempts, retries included
	RequestsPerSec    float64          `json:"requests_per_sec"`
	Retries           int64            `json:"retries"`
	GaveUp            int64            `json:"gave_up"` // requests never accepted (--retry: still refused when the run ended)
	AcceptedRequests  int64            `json:"accepted_requests"`
	AcceptedAlerts    int64            `json:"accepted_alerts"`
	AcceptedPerSec    float64          `json:"accepted_alerts_per_sec"`
	Status            map[string]int64 `json:"status"` // by HTTP status
	Status5xx         int64            `json:"status_5xx"`
	Status503         int64            `json:"status_503"`
	Rejected503Retry  int64            `json:"rejected_503_with_retry_after"`
	Rejected503NoHint int64            `json:"rejected_503_without_retry_after"`
	OtherStatus       int64            `json:"other_status"` // neither 2xx nor 503
	Errors            int64            `json:"errors"`       // no HTTP answer (refused, reset, timeout)
	ErrorSample       string           `json:"error_sample,omitempty"`

	// Latency of every answered request: in open loop from when it was due
	// (so waiting for a free connection counts), in closed loop from when
	// it was sent.
	Latency latencySummary `json:"latency_ms"`
	// Accepted: the same, of 202s only. Rejected: 503s, from when each was
	// sent (how fast the server refuses).
	Accepted latencySummary `json:"accepted_latency_ms"`
	Rejected latencySummary `json:"rejected_503_latency_ms"`
	// SendLag is how late requests went out against the timetable (open
	// loop): large when the client or its connections were the limit.
	SendLag latencySummary `json:"send_lag_ms"`

	RSS *rssReport `json:"rss,omitempty"`
	// ClientCPUCores is the CPU the load tool itself used, in cores: on a
	// small machine it competes with the daemon.
	ClientCPUCores float64 `json:"client_cpu_cores"`
	// Machine is how busy the whole machine was (from /proc/stat).
	Machine *machineReport `json:"machine,omitempty"`
	// FirstSent is when each group's first request went out (Unix
	// nanoseconds), by groupKey; the storm check measures announcements
	// from it.
	FirstSent map[string]int64 `json:"first_sent_unix_nano"`
}

// tally is one worker's counts; tallies merge at the end.
type tally struct {
	all, accepted, rejected, lag histogram

	requests, retries, gaveUp  int64
	acceptedReq, acceptedAlert int64
	status                     map[int]int64
	withHint, withoutHint      int64
	errors                     int64
	errSample                  string
}

func (t *tally) merge(o *tally) {
	t.all.Merge(&o.all)
	t.accepted.Merge(&o.accepted)
	t.rejected.Merge(&o.rejected)
	t.lag.Merge(&o.lag)
	t.requests += o.requests
	t.retries += o.retries
	t.gaveUp += o.gaveUp
	t.acceptedReq += o.acceptedReq
	t.acceptedAlert += o.acceptedAlert
	for k, v := range o.status {
		t.status[k] += v
	}
	t.withHint += o.withHint
	t.withoutHint += o.withoutHint
	t.errors += o.errors
	if t.errSample == "" {
		t.errSample = o.errSample
	}
}

// loader sends the requests of one run.
type loader struct {
	cfg       loadConfig
	payloads  *payloads
	client    *http.Client
	url       string
	stopAt    time.Time // no new request after this
	giveUpAt  time.Time // no retry after this
	firstSent []atomic.Int64
	body      func(buf []byte, r int64) ([]byte, int) // request r's body and group
}

func runLoad(ctx context.Context, c loadConfig, p *payloads) (*report, error) {
	tr := &http.Transport{
		MaxIdleConns:        c.connections,
		MaxIdleConnsPerHost: c.connections,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	l := &loader{
		cfg:       c,
		payloads:  p,
		client:    &http.Client{Timeout: c.timeout, Transport: tr},
		url:       strings.TrimRight(c.url, "/") + ingestPath,
		body:      p.Body,
		firstSent: make([]atomic.Int64, c.groups),
	}
	if c.api == "alertmanager" {
		l.url, l.body = strings.TrimRight(c.url, "/")+alertmanagerPath, p.PostableBody
	}
	var rss *rssSampler
	if c.pid > 0 {
		var err error
		if rss, err = startRSS(c.pid, c.rssEvery); err != nil {
			return nil, err
		}
	}
	cpuBefore, _ := readCPU(os.Getpid())
	machineBefore, machineErr := readMachineCPU()
	start := time.Now()
	l.stopAt = start.Add(c.duration)
	l.giveUpAt = l.stopAt.Add(c.timeout)
	tallies := make([]*tally, c.connections)
	for i := range tallies {
		tallies[i] = &tally{status: map[int]int64{}}
	}
	var wg sync.WaitGroup
	mode := "closed"
	if c.rate > 0 {
		mode = "open"
		jobs := make(chan job)
		for i := range c.connections {
			wg.Go(func() {
				buf := make([]byte, 0, 4096)
				for j := range jobs {
					buf = l.send(ctx, tallies[i], buf, j)
				}
			})
		}
		tt := newTimetable(start, c.rate/float64(c.alertsPerBody), c.requests(), c.duration)
		schedule(ctx, tt, wallClock{}, func(j job) bool {
			select {
			case jobs <- j:
				return true
			case <-ctx.Done():
				return false
			}
		})
		close(jobs)
	} else {
		var next atomic.Int64
		limit := c.requests()
		for i := range c.connections {
			wg.Go(func() {
				buf := make([]byte, 0, 4096)
				for ctx.Err() == nil && time.Now().Before(l.stopAt) {
					seq := next.Add(1) - 1
					if limit > 0 && seq >= limit {
						return
					}
					buf = l.send(ctx, tallies[i], buf, job{seq: seq})
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	t := &tally{status: map[int]int64{}}
	for _, o := range tallies {
		t.merge(o)
	}
	rep := &report{
		Mode: mode, URL: c.url, Connections: c.connections, AlertsPerBody: c.alertsPerBody, Groups: c.groups,
		Fingerprints: c.fingerprints, TargetRate: c.rate, Seconds: round3(elapsed.Seconds()),
		Requests: t.requests, Retries: t.retries, GaveUp: t.gaveUp,
		AcceptedRequests: t.acceptedReq, AcceptedAlerts: t.acceptedAlert,
		Status: map[string]int64{}, Rejected503Retry: t.withHint, Rejected503NoHint: t.withoutHint,
		Errors: t.errors, ErrorSample: t.errSample,
		Latency: t.all.Summary(), Accepted: t.accepted.Summary(), Rejected: t.rejected.Summary(), SendLag: t.lag.Summary(),
		FirstSent: map[string]int64{},
	}
	rep.RequestsPerSec = round3(float64(t.requests) / elapsed.Seconds())
	rep.AcceptedPerSec = round3(float64(t.acceptedAlert) / elapsed.Seconds())
	for code, n := range t.status {
		rep.Status[strconv.Itoa(code)] = n
		switch {
		case code == http.StatusServiceUnavailable:
			rep.Status503 += n
			rep.Status5xx += n
		case code >= 500:
			rep.Status5xx += n
		}
		if code/100 != 2 && code != http.StatusServiceUnavailable {
			rep.OtherStatus += n
		}
	}
	for g := range l.firstSent {
		if at := l.firstSent[g].Load(); at != 0 {
			rep.FirstSent[p.group[g].key] = at
		}
	}
	if rss != nil {
		rep.RSS = rss.stop()
	}
	if cpuAfter, err := readCPU(os.Getpid()); err == nil {
		rep.ClientCPUCores = math.Round(float64(cpuAfter-cpuBefore)/100/elapsed.Seconds()*100) / 100
	}
	if after, err := readMachineCPU(); err == nil && machineErr == nil {
		m := machineBetween(machineBefore, after, elapsed.Seconds())
		m.OtherCores = m.BusyCores - rep.ClientCPUCores
		if rep.RSS != nil {
			m.OtherCores -= rep.RSS.CPUCores
		}
		m.OtherCores = math.Round(max(m.OtherCores, 0)*100) / 100
		rep.Machine = &m
	}
	return rep, nil
}

// send posts request j, and with --retry sends it again after each 503's
// Retry-After until it is accepted or the run is over. It returns buf for
// the next body.
func (l *loader) send(ctx context.Context, t *tally, buf []byte, j job) []byte {
	body, g := l.body(buf[:0], j.seq)
	for attempt := 0; ; attempt++ {
		sent := time.Now()
		l.firstSent[g].CompareAndSwap(0, sent.UnixNano())
		status, hint, err := l.post(ctx, body)
		done := time.Now()
		t.requests++
		if attempt > 0 {
			t.retries++
		}
		from := sent
		if !j.due.IsZero() && attempt == 0 {
			from = j.due
			t.lag.Record(sent.Sub(j.due))
		}
		if err != nil {
			t.errors++
			if t.errSample == "" {
				t.errSample = err.Error()
			}
			t.gaveUp++
			return body
		}
		t.status[status]++
		t.all.Record(done.Sub(from))
		switch {
		case status >= 200 && status < 300:
			t.accepted.Record(done.Sub(from))
			t.acceptedReq++
			t.acceptedAlert += int64(l.payloads.alertsPerBody)
			return body
		case status == http.StatusServiceUnavailable:
			t.rejected.Record(done.Sub(sent))
			if hint > 0 {
				t.withHint++
			} else {
				t.withoutHint++
			}
		}
		wait := hint // Alertmanager waits at least its own backoff; a missing hint is a second
		if wait <= 0 {
			wait = time.Second
		}
		if !l.cfg.retry || status != http.StatusServiceUnavailable || time.Now().Add(wait).After(l.giveUpAt) {
			t.gaveUp++
			return body
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.gaveUp++
			return body
		case <-timer.C:
		}
	}
}

// post sends one body and reads the whole answer. hint is the answer's
// Retry-After (0 when absent or not a number of seconds).
func (l *loader) post(ctx context.Context, body []byte) (status int, hint time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.34.2")
	if l.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.cfg.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, 0, fmt.Errorf("read answer: %w", err)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		hint = time.Duration(secs) * time.Second
		if hint == 0 {
			hint = time.Nanosecond // present, zero: still a hint
		}
	}
	return resp.StatusCode, hint, nil
}

func (r *report) print(w io.Writer) {
	desc := fmt.Sprintf("closed loop, %d connections", r.Connections)
	if r.Mode == "open" {
		desc = fmt.Sprintf("open loop at %.0f alerts/s, up to %d in flight", r.TargetRate, r.Connections)
	}
	_, _ = fmt.Fprintf(w, "%s, %d alerts per body, %d groups, %.1f s against %s\n", desc, r.AlertsPerBody, r.Groups, r.Seconds, r.URL)
	_, _ = fmt.Fprintf(w, "  requests   %d (%.1f/s), %d retries, %d never accepted\n", r.Requests, r.RequestsPerSec, r.Retries, r.GaveUp)
	_, _ = fmt.Fprintf(w, "  accepted   %d alerts (%.1f alerts/s) in %d requests\n", r.AcceptedAlerts, r.AcceptedPerSec, r.AcceptedRequests)
	codes := make([]string, 0, len(r.Status))
	for code := range r.Status {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	var parts []string
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%s x %d", code, r.Status[code]))
	}
	_, _ = fmt.Fprintf(w, "  status     %s; 503 with Retry-After %d, without %d; no answer %d\n",
		strings.Join(parts, ", "), r.Rejected503Retry, r.Rejected503NoHint, r.Errors)
	if r.ErrorSample != "" {
		_, _ = fmt.Fprintf(w, "  first error: %s\n", r.ErrorSample)
	}
	from := "from send"
	if r.Mode == "open" {
		from = "from due time"
	}
	printLatency(w, "latency ("+from+")", r.Latency)
	printLatency(w, "202s ("+from+")", r.Accepted)
	printLatency(w, "503s (from send)", r.Rejected)
	if r.Mode == "open" {
		printLatency(w, "send lag", r.SendLag)
	}
	if r.RSS != nil {
		_, _ = fmt.Fprintf(w, "  rss of %d  peak %.1f MiB, at the end %.1f MiB (anon %.1f, file %.1f), %d samples; it used %.2f cores\n",
			r.RSS.PID, r.RSS.PeakMiB, r.RSS.EndMiB, r.RSS.EndAnonMiB, r.RSS.EndFileMiB, r.RSS.Samples, r.RSS.CPUCores)
	}
	_, _ = fmt.Fprintf(w, "  this tool used %.2f cores", r.ClientCPUCores)
	if m := r.Machine; m != nil {
		_, _ = fmt.Fprintf(w, "; the machine: %.2f cores busy (%.2f by other programs), %.2f idle, %.2f stolen", m.BusyCores, m.OtherCores, m.IdleCores, m.StealCores)
	}
	_, _ = fmt.Fprintln(w)
}

func printLatency(w io.Writer, name string, s latencySummary) {
	if s.Count == 0 {
		return
	}
	_, _ = fmt.Fprintf(w, "  %-26s ms: p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (%d)\n",
		name, s.P50, s.P95, s.P99, s.P999, s.Max, s.Count)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := writeFile(path, append(b, '\n')); err != nil {
		return err
	}
	return nil
}
