//go:build unix

package main

// Crash harness: the built responder binary runs against fake vendors that
// live in this test process (Slack, SMTP, Zoom, OpsGenie, all on
// 127.0.0.1), several posters send it Alertmanager webhooks and declare
// incidents, and it is killed with SIGKILL at random moments and restarted
// on the same data directory, RESPONDER_CRASH_CYCLES times (5 by default;
// `make crash-test` runs 100). At the end it checks that:
//
//   - every alert that got a 2xx is there through the API, once, and every
//     request whose answer was lost was sent again without adding anything
//     (no second incident, alert or notification);
//   - the bbolt file is consistent (tx.Check in process once the daemon
//     stopped, and the `bbolt check` CLI when it is installed);
//   - every notification intent is delivered, and exactly once by what each
//     vendor sees as its identity: the Slack message metadata key, the email
//     Message-ID, the OpsGenie alias and action. Raw repeats that a vendor
//     folds (an email sent twice with one Message-ID, a create for an open
//     alias) and extra Zoom meetings are counted and reported.
//
// The random moments come from a seeded generator; the seed is logged and
// RESPONDER_CRASH_SEED replays it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/responder-sre/responder/integrations/email/smtptest"
	"github.com/responder-sre/responder/integrations/opsgenie/opsgenietest"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
	"github.com/responder-sre/responder/integrations/zoom/zoomtest"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

const (
	crashSlackToken = "xoxb-crash-0000-slack-token"
	crashZoomSecret = "crash-zoom-secret-0000"
	crashOGKey      = "crash-opsgenie-key-0000"
	crashTeams      = 10 // one Slack channel each, so that Slack's rate is not the bottleneck
	crashPosters    = 4
	// crashRunMin and crashRunMax bound how long the daemon runs under load
	// before it is killed.
	crashRunMin = 300 * time.Millisecond
	crashRunMax = 1500 * time.Millisecond
	// crashFinishTimeout bounds the last run (the posters finish their
	// groups, every notification is delivered), plus crashFinishPerCycle
	// for the backlog each cycle leaves.
	crashFinishTimeout  = 60 * time.Second
	crashFinishPerCycle = time.Second
)

// TestCrashSafety is the crash harness described at the top of the file.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash harness: skipped with -short")
	}
	cycles := 5
	if v := os.Getenv("RESPONDER_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RESPONDER_CRASH_CYCLES=%q: want a whole number of at least 1", v)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RESPONDER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RESPONDER_CRASH_SEED=%q: want a whole number", v)
		}
		seed = n
	}
	t.Logf("crash harness: %d cycles, seed %d (RESPONDER_CRASH_SEED=%d replays it)", cycles, seed, seed)
	started := time.Now()
	h := newCrashHarness(t, e2eBuild(t), seed)
	rng := rand.New(rand.NewPCG(seed, 1)) //nolint:gosec // test randomness, seeded and logged

	for cycle := 1; cycle <= cycles; cycle++ {
		p := h.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := h.runPosters(ctx)
		time.Sleep(crashRunMin + time.Duration(rng.Int64N(int64(crashRunMax-crashRunMin))))
		h.kill(t, p)
		cancel()
		done.Wait()
	}

	// The last run: the posters finish what they started, every
	// notification is delivered, then a clean stop.
	p := h.start(t)
	h.finishing.Store(true)
	finish := crashFinishTimeout + time.Duration(cycles)*crashFinishPerCycle
	ctx, cancel := context.WithTimeout(context.Background(), finish)
	defer cancel()
	h.runPosters(ctx).Wait()
	if ctx.Err() != nil {
		t.Fatalf("the posters did not finish within %s", finish)
	}
	h.checkAPI(t)
	h.waitDelivered(t, ctx, finish)
	h.stop(t, p)

	h.checkFile(t)
	h.checkDeliveries(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.unexpected {
		t.Errorf("unexpected answer: %s", u)
	}
	logs, _ := os.ReadFile(h.logPath)
	t.Logf("crash harness: %d cycles in %s; %d requests, %d answered 2xx, %d answers lost to a kill (%d sent again), %d refused while down, %d 503; %d deliveries in doubt found at the vendor and not sent again",
		cycles, time.Since(started).Round(time.Millisecond), h.stats.posts, h.stats.acked, h.stats.lost, h.stats.resent,
		h.stats.refused, h.stats.busy, bytes.Count(logs, []byte(`"found_at_vendor":true`)))
}

// crashHarness is the fake vendors, the daemon's config and data, and what
// the posters sent and were told.
type crashHarness struct {
	bin, dir, cfg, logPath, dbPath string
	url, token                     string
	client                         *http.Client
	sock                           *os.File // the listening socket every start of the daemon is handed

	slack *slacktest.Server
	smtp  *smtptest.Server
	zoom  *zoomtest.Server
	og    *opsgenietest.Server

	posters   []*crashPoster
	finishing atomic.Bool

	mu         sync.Mutex
	live       *e2eProcess // the running daemon, killed on cleanup
	stats      struct{ posts, acked, lost, resent, refused, busy int }
	unexpected []string // answers that are neither 2xx nor 503
}

func newCrashHarness(t *testing.T, bin string, seed uint64) *crashHarness {
	t.Helper()
	dir := t.TempDir()
	h := &crashHarness{
		bin: bin, dir: dir,
		cfg:     filepath.Join(dir, "responder.yml"),
		logPath: filepath.Join(dir, "responder.log"),
		dbPath:  filepath.Join(dir, "data", dbFile),
		token:   "crash-" + e2eRandomHex(t, 16),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	sock, addr := heldSocket(t)
	h.sock = sock
	h.url = "http://" + addr

	h.slack = slacktest.New(crashSlackToken)
	t.Cleanup(h.slack.Close)
	// A post is stored before its answer leaves: a kill in between leaves
	// a message Slack has and the outbox does not know about.
	h.slack.AnswerDelay(20 * time.Millisecond)
	var teams strings.Builder
	for i := range crashTeams {
		h.slack.AddChannel(fmt.Sprintf("team-%d", i))
		fmt.Fprintf(&teams, "      t%d: \"#team-%d\"\n", i, i)
	}
	h.slack.AddChannel("incidents")
	h.slack.AddChannel("customer-eng")
	h.smtp = smtptest.Start(t)
	smtpHost, smtpPort := h.smtp.Addr()
	h.zoom = zoomtest.New("crash-acct", "crash-client", crashZoomSecret)
	t.Cleanup(h.zoom.Close)
	h.og = opsgenietest.New(crashOGKey)
	t.Cleanup(h.og.Close)

	e2eWriteFile(t, h.cfg, fmt.Sprintf(`listen: %s
data_dir: %s
log:
  level: info
  format: json
auth:
  tokens:
    - name: crash
      token: %s
      scopes: [ingest, read, write]
policy:
  business_hours:
    time_intervals: []   # always out of hours: S1 and S2 page
notifications:
  retry_base: 100ms
  retry_max: 1s
  concurrency: 8
  timeout: 5s
  slack:
    token: %s
    api_url: %s
    channel: "#incidents"
    team_channels:
%s    customer_channel: "#customer-eng"
    rate_per_second: 10
    burst: 10
  email:
    host: %s
    port: %d
    tls: none
    from: Responder <responder@example.com>
    recipients:
      S1: [oncall@example.com]
      S2: [oncall@example.com, leads@example.com]
    customer_engineering: [ce@example.com]
    events: [opened, resolved]
  zoom:
    api:
      account_id: crash-acct
      client_id: crash-client
      client_secret: %s
      token_url: %s
      api_url: %s
  opsgenie:
    api_key: %s
    api_url: %s
    responder:
      type: team
      name: sre-oncall
`, addr, filepath.Join(dir, "data"), h.token, crashSlackToken, h.slack.URL(), teams.String(), smtpHost, smtpPort,
		crashZoomSecret, h.zoom.TokenURL(), h.zoom.APIURL(), crashOGKey, h.og.Host()))

	for i := range crashPosters {
		h.posters = append(h.posters, &crashPoster{h: h, id: i,
			rng: rand.New(rand.NewPCG(seed, uint64(100+i)))}) //nolint:gosec // test randomness, seeded and logged
	}
	t.Cleanup(func() {
		h.mu.Lock()
		p := h.live
		h.mu.Unlock()
		if p != nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			e2eLogTail(t, "responder", h.logPath)
		}
	})
	return h
}

// start starts the daemon on the data directory and waits until it is
// ready. Its output is appended to one log across restarts.
func (h *crashHarness) start(t *testing.T) *e2eProcess {
	t.Helper()
	logFile, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// The same held socket on every start: the port is the harness's for
	// the whole run, and requests sent while the daemon is down wait in
	// its backlog.
	cmd := activated(h.sock, nil, h.bin, "serve", "--config", h.cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("start responder: %v", err)
	}
	p := &e2eProcess{name: "responder", cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	h.mu.Lock()
	h.live = p
	h.mu.Unlock()
	e2eWaitReady(t, p, h.client, h.url+"/readyz")
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *crashHarness) kill(t *testing.T, p *e2eProcess) {
	t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill responder: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("responder still running 10s after SIGKILL")
	}
	h.mu.Lock()
	h.live = nil
	h.mu.Unlock()
}

// stop sends SIGTERM and wants a clean exit.
func (h *crashHarness) stop(t *testing.T, p *e2eProcess) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop responder: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("responder did not stop within 30s of SIGTERM")
	}
	h.mu.Lock()
	h.live = nil
	h.mu.Unlock()
	if p.err != nil {
		t.Fatalf("responder exited with %v after SIGTERM, want a clean exit", p.err)
	}
}

// crashStep is one request a poster sends until it gets a 2xx: an
// Alertmanager group firing or resolving, or a declared incident.
type crashStep struct {
	kind  string // fire, resolve, declare
	group *crashGroup
	title string // declare
	key   string // declare: its Idempotency-Key
	body  []byte
	lost  bool // an earlier send of it got no answer
	acked bool
	id    string // declare: the incident id answered
}

// crashGroup is one Alertmanager group: its alerts fire together in one
// webhook and resolve together in another.
type crashGroup struct {
	key          string // groupKey
	name         string // alertname
	labels       map[string]string
	fingerprints []string
	fired        bool // the firing webhook got a 2xx
	resolved     bool // the resolving webhook got a 2xx
}

// crashPoster sends its own groups and declarations, one request at a
// time, each until it gets a 2xx (a declaration with its Idempotency-Key,
// so that a resend after a lost answer finds the incident).
type crashPoster struct {
	h        *crashHarness
	id       int
	rng      *rand.Rand
	n        int
	cur      *crashStep
	groups   []*crashGroup
	declares []*crashStep
}

func (h *crashHarness) runPosters(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, p := range h.posters {
		wg.Add(1)
		go func() { defer wg.Done(); p.run(ctx) }()
	}
	return &wg
}

// next is the step after cur: a group's resolution after its firing, else
// something new (nothing once the harness is finishing).
func (p *crashPoster) next() *crashStep {
	if p.cur != nil && p.cur.kind == "fire" {
		return &crashStep{kind: "resolve", group: p.cur.group, body: amBody(p.cur.group, "resolved")}
	}
	if p.h.finishing.Load() {
		return nil
	}
	p.n++
	if p.rng.IntN(5) == 0 {
		title := fmt.Sprintf("Crash harness declared %d-%d", p.id, p.n)
		body, _ := json.Marshal(map[string]any{
			"title": title, "severity": "S2", "customer_impact": p.rng.IntN(2) == 0, "declared_by": "crash-harness",
			"labels": map[string]string{"team": fmt.Sprintf("t%d", p.rng.IntN(crashTeams))},
		})
		st := &crashStep{kind: "declare", title: title, key: fmt.Sprintf("crash-%d-%d", p.id, p.n), body: body}
		p.declares = append(p.declares, st)
		return st
	}
	name := fmt.Sprintf("Crash%d_%d", p.id, p.n)
	g := &crashGroup{key: fmt.Sprintf(`{}/{crash="%d-%d"}:{alertname="%s"}`, p.id, p.n, name), name: name}
	for i := range 1 + p.rng.IntN(3) {
		g.fingerprints = append(g.fingerprints, fmt.Sprintf("%08x%08x", p.id*1_000_000+p.n, i))
	}
	sev := "warning"
	if p.rng.IntN(2) == 0 {
		sev = "critical"
	}
	g.labels = map[string]string{"alertname": name, "severity": sev, "team": fmt.Sprintf("t%d", p.rng.IntN(crashTeams))}
	p.groups = append(p.groups, g)
	return &crashStep{kind: "fire", group: g, body: amBody(g, "firing")}
}

func (p *crashPoster) run(ctx context.Context) {
	h := p.h
	for ctx.Err() == nil {
		if p.cur == nil || p.cur.acked {
			p.cur = p.next()
			if p.cur == nil {
				return
			}
		}
		st := p.cur
		status, err := h.send(ctx, st)
		h.mu.Lock()
		h.stats.posts++
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			h.stats.refused++ // never reached the daemon
		case err != nil:
			h.stats.lost++
			st.lost = true
		case status == http.StatusServiceUnavailable:
			h.stats.busy++
		case status >= 200 && status < 300:
			h.stats.acked++
			if st.lost {
				h.stats.resent++
			}
			st.acked = true
			switch st.kind {
			case "fire":
				st.group.fired = true
			case "resolve":
				st.group.resolved = true
			}
		}
		if err == nil && (status < 200 || status >= 300) && status != http.StatusServiceUnavailable {
			h.unexpected = append(h.unexpected, fmt.Sprintf("%s answered %d: %s", st.kind, status, st.body))
			st.acked = true // not sent again
		}
		h.mu.Unlock()
		pause := time.Duration(10+p.rng.IntN(40)) * time.Millisecond
		if err != nil || status == http.StatusServiceUnavailable {
			pause = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// send posts a step once and returns the status, reading the declared
// incident's id.
func (h *crashHarness) send(ctx context.Context, st *crashStep) (int, error) {
	path := "/api/v1/alerts/alertmanager"
	if st.kind == "declare" {
		path = "/api/v1/incidents"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, bytes.NewReader(st.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	if st.key != "" {
		req.Header.Set("Idempotency-Key", st.key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err // the answer was cut: as good as lost
	}
	if st.kind == "declare" && resp.StatusCode == http.StatusCreated {
		var inc struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &inc); err == nil {
			h.mu.Lock()
			st.id = inc.ID
			h.mu.Unlock()
		}
	}
	return resp.StatusCode, nil
}

var crashStartsAt = time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)

// amBody is an Alertmanager v4 webhook of the group's alerts, firing or
// resolved; the same every time it is built, as a resend is.
func amBody(g *crashGroup, status string) []byte {
	var alerts []map[string]any
	for i, fp := range g.fingerprints {
		labels := map[string]string{"instance": fmt.Sprintf("i%d", i)}
		for k, v := range g.labels {
			labels[k] = v
		}
		a := map[string]any{
			"status": status, "labels": labels, "annotations": map[string]string{"summary": g.name + " is failing"},
			"startsAt": crashStartsAt.Format(time.RFC3339), "endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus.example.com/graph", "fingerprint": fp,
		}
		if status == "resolved" {
			a["endsAt"] = crashStartsAt.Add(time.Hour).Format(time.RFC3339)
		}
		alerts = append(alerts, a)
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": g.key, "truncatedAlerts": 0, "status": status, "receiver": "responder",
		"groupLabels": map[string]string{"alertname": g.name}, "commonLabels": g.labels, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager.example.com", "alerts": alerts,
	})
	return b
}

// crashIncident is the part of an incident the checks read.
type crashIncident struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"`
	Source   string `json:"source"`
	DedupKey string `json:"dedup_key"`
	Alerts   []struct {
		Fingerprint string `json:"fingerprint"`
		Status      string `json:"status"`
	} `json:"alerts"`
}

func (h *crashHarness) get(t *testing.T, path string, v any) {
	t.Helper()
	e2eGetJSON(t, h.client, h.url, h.token, path, v)
}

// checkAPI: every group whose webhook got a 2xx is one incident holding
// each of its alerts once, resolved when its resolution got a 2xx; every
// declared incident that got a 2xx exists once (resent with its
// Idempotency-Key after a lost answer); nothing else exists.
func (h *crashHarness) checkAPI(t *testing.T) {
	t.Helper()
	var all []crashIncident
	for before := ""; ; {
		var page struct {
			Incidents []crashIncident `json:"incidents"`
			Next      string          `json:"next"`
		}
		path := "/api/v1/incidents?limit=500"
		if before != "" {
			path += "&before=" + before
		}
		h.get(t, path, &page)
		all = append(all, page.Incidents...)
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	byKey := map[string][]crashIncident{}
	byTitle := map[string][]crashIncident{}
	for _, inc := range all {
		byKey[inc.DedupKey] = append(byKey[inc.DedupKey], inc)
		byTitle[inc.Title] = append(byTitle[inc.Title], inc)
	}
	// The posters have stopped: what they recorded is read without a lock.
	groups, declared := 0, 0
	for _, p := range h.posters {
		for _, g := range p.groups {
			if !g.fired {
				continue // never acknowledged (the last run finishes every group it started)
			}
			groups++
			incs := byKey[g.key]
			if len(incs) != 1 {
				t.Errorf("group %s: %d incidents, want 1", g.key, len(incs))
				continue
			}
			var inc crashIncident
			h.get(t, "/api/v1/incidents/"+incs[0].ID, &inc)
			seen := map[string]int{}
			for _, a := range inc.Alerts {
				seen[a.Fingerprint]++
				if g.resolved && a.Status != "resolved" {
					t.Errorf("%s: alert %s is %s after its resolution got a 2xx", inc.ID, a.Fingerprint, a.Status)
				}
			}
			for _, fp := range g.fingerprints {
				if seen[fp] != 1 {
					t.Errorf("%s: alert %s stored %d times, want once", inc.ID, fp, seen[fp])
				}
			}
			if len(inc.Alerts) != len(g.fingerprints) {
				t.Errorf("%s: %d alerts, want %d", inc.ID, len(inc.Alerts), len(g.fingerprints))
			}
			if g.resolved && inc.Status != "resolved" {
				t.Errorf("%s: %s after its group resolved", inc.ID, inc.Status)
			}
		}
		for _, d := range p.declares {
			n := len(byTitle[d.title])
			switch {
			case d.acked && n != 1:
				t.Errorf("declared %q got a 2xx and exists %d times, want once", d.title, n)
			case d.acked && d.id != byTitle[d.title][0].ID:
				t.Errorf("declared %q: answered %s, stored as %s", d.title, d.id, byTitle[d.title][0].ID)
			case !d.acked && n > 1:
				t.Errorf("declared %q (never answered) exists %d times, want at most once", d.title, n)
			}
			declared += n
		}
	}
	if len(all) != groups+declared {
		t.Errorf("%d incidents, want %d (%d groups, %d declared): a resend added one", len(all), groups+declared, groups, declared)
	}
	t.Logf("API: %d incidents (%d Alertmanager groups, %d declared), every 2xx present", len(all), groups, declared)
}

var outboxPending = regexp.MustCompile(`(?m)^responder_outbox_pending (\S+)$`)

// waitDelivered waits until the outbox has been empty twice in a row.
func (h *crashHarness) waitDelivered(t *testing.T, ctx context.Context, limit time.Duration) {
	t.Helper()
	empty := 0
	for empty < 2 {
		if ctx.Err() != nil {
			t.Fatalf("notifications still pending after %s", limit)
		}
		req, _ := http.NewRequest(http.MethodGet, h.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		m := outboxPending.FindSubmatch(body)
		if m != nil && string(m[1]) == "0" {
			empty++
		} else {
			empty = 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkFile checks the bbolt file's consistency, in process and with the
// bbolt CLI when it is installed.
func (h *crashHarness) checkFile(t *testing.T) {
	t.Helper()
	db, err := bbolt.Open(h.dbPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", h.dbPath, err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt tx.Check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err := db.Close(); err != nil {
		t.Error(err)
	}
	cli := crashBboltCLI()
	if cli == "" {
		t.Log("bbolt CLI not found (make test and make crash-test install it): only tx.Check ran")
		return
	}
	out, err := exec.Command(cli, "check", h.dbPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("%s check %s: %v\n%s", cli, h.dbPath, err, out)
		return
	}
	t.Logf("bbolt check: %s", bytes.TrimSpace(out))
}

func crashBboltCLI() string {
	if p := os.Getenv("RESPONDER_BBOLT_CLI"); p != "" {
		return p
	}
	if p, err := exec.LookPath("bbolt"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "bbolt")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// checkDeliveries reads every intent from the stopped daemon's file: each
// must be sent, each ingest event at most once per incident, and each
// delivery's identity seen by its vendor exactly once.
func (h *crashHarness) checkDeliveries(t *testing.T) {
	t.Helper()
	db, err := bolt.Open(h.dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var intents []store.Intent
	err = db.View(context.Background(), func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{})
		if err != nil {
			return err
		}
		for _, inc := range page.Incidents {
			ins, err := tx.IncidentIntents(inc.ID)
			if err != nil {
				return err
			}
			intents = append(intents, ins...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]store.Intent{}
	perEvent := map[string]int{}
	for _, in := range intents {
		bySeq[in.Seq] = in
		if in.State == store.IntentCancelled && in.Event == "page" {
			continue // its incident resolved before it went: nothing to deliver
		}
		if in.State != store.IntentSent {
			t.Errorf("%s %s %s to %s: %s after %d attempts (%s)", in.IncidentID, in.Channel, in.Event, in.Target, in.State, in.Attempts, in.LastError)
		}
		switch in.Event {
		case "opened", "resolved", "bridge", "page", "close", "customer", "customer_impact":
			perEvent[in.IncidentID+" "+in.Channel+" "+in.Target+" "+in.Event]++
		case "root_update":
			// The root is edited once per change it shows (the page's
			// outcome, the resolution): once per cause, never twice.
			perEvent[in.IncidentID+" "+in.Channel+" "+in.Target+" "+in.Event+" ("+in.Text+")"]++
		case "alert_joined", "reopened":
			t.Errorf("%s: a %s %s intent: every alert of a group came in one webhook, so a resend added it", in.IncidentID, in.Channel, in.Event)
		}
	}
	for k, n := range perEvent {
		if n > 1 {
			t.Errorf("%s: %d intents, want at most 1: a resend or a restart queued it again", k, n)
		}
	}

	// Slack: one message per delivery key, nothing else.
	slackKeys := map[string]int{}
	for _, ch := range h.slackChannels() {
		for _, root := range h.slack.Messages(ch) {
			for _, m := range append([]slacktest.Message{root}, root.Replies...) {
				if m.Metadata == nil {
					t.Errorf("Slack message without metadata in %s: %q", ch, m.Text)
					continue
				}
				key, _ := m.Metadata.EventPayload["key"].(string)
				slackKeys[key]++
			}
		}
	}
	slackDup, slackWant := 0, map[string]bool{}
	emailCopies, ogRepeats, zoomExtra := 0, 0, 0
	mails := map[string]int{}
	for _, m := range h.smtp.Messages() {
		mails[m.Header.Get("Message-ID")]++
	}
	meetings := map[string]int{}
	for _, m := range h.zoom.Meetings() {
		// The topic is "[S1] INC-4: title".
		if _, rest, ok := strings.Cut(m.Request.Topic, "] "); ok && m.Status == http.StatusCreated {
			id, _, _ := strings.Cut(rest, ":")
			meetings[id]++
		}
	}
	// What OpsGenie took, by event and alias.
	og := map[string]map[string]int{"page": {}, "close": {}, "acknowledged": {}, "note": {}}
	for _, c := range h.og.Creates() {
		og["page"][c.Request.Alias]++
	}
	for _, c := range h.og.Closes() {
		og["close"][c.Identifier]++
	}
	for _, c := range h.og.Acknowledges() {
		og["acknowledged"][c.Identifier]++
	}
	for _, n := range h.og.Notes() {
		og["note"][n.Identifier]++
	}
	host := strings.TrimPrefix(h.url, "http://")
	for _, in := range intents {
		switch in.Channel {
		case "slack":
			if in.Event == "root_update" {
				continue // an edit of the root: repeating it changes nothing
			}
			key := in.Key
			if in.MergedInto != 0 {
				key = bySeq[in.MergedInto].Key
			}
			slackWant[key] = true
		case "email":
			id := ""
			for mid, n := range mails {
				if strings.HasPrefix(mid, "<"+in.Key+"@") {
					id = mid
					emailCopies += n - 1
				}
			}
			if id == "" {
				t.Errorf("%s email %s: no mail with Message-ID <%s@...>", in.IncidentID, in.Event, in.Key)
			}
		case "opsgenie":
			if in.State == store.IntentCancelled {
				continue
			}
			alias := "responder/" + host + "/" + in.IncidentID
			got := og[in.Event]
			switch n := got[alias]; {
			case n == 0:
				t.Errorf("%s opsgenie %s: never reached OpsGenie", in.IncidentID, in.Event)
			case n > 1:
				ogRepeats += n - 1
			}
			if a, ok := h.og.Alert(alias); in.Event == "page" && (!ok || a.Alias != alias) {
				t.Errorf("%s: no OpsGenie alert with alias %s", in.IncidentID, alias)
			}
		case "zoom":
			switch n := meetings[in.IncidentID]; {
			case n == 0:
				t.Errorf("%s: no Zoom meeting", in.IncidentID)
			case n > 1:
				zoomExtra += n - 1
			}
		}
	}
	for key := range slackWant {
		switch n := slackKeys[key]; {
		case n == 0:
			t.Errorf("Slack: no message for delivery %s", key)
		case n > 1:
			slackDup += n - 1
			t.Errorf("Slack: %d messages for delivery %s, want exactly 1", n, key)
		}
	}
	for key := range slackKeys {
		if !slackWant[key] {
			t.Errorf("Slack: a message for %s, which no intent asked for", key)
		}
	}
	t.Logf("deliveries: %d intents, all checked; duplicates: Slack %d, email copies with one Message-ID %d, OpsGenie repeats folded by alias %d, extra Zoom meetings %d",
		len(intents), slackDup, emailCopies, ogRepeats, zoomExtra)
}

func (h *crashHarness) slackChannels() []string {
	out := []string{"incidents", "customer-eng"}
	for i := range crashTeams {
		out = append(out, fmt.Sprintf("team-%d", i))
	}
	return out
}
