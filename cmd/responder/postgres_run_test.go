package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/postgres"
)

// The daemon on PostgreSQL (store.postgres) serves the same API; while the
// database is down, writes answer 503 with Retry-After and /readyz says so,
// nothing else is a 5xx, and it recovers once the database is back,
// without a restart; nothing accepted is lost.
func TestServeOnPostgres(t *testing.T) {
	pg := testPostgres(t)
	dsn := pg.NewDatabase(t)
	d := startDaemon(t, fmt.Sprintf("store:\n  postgres:\n    dsn: %q\n", dsn), nil, "http")

	declare := func(title string) *http.Response {
		t.Helper()
		resp, err := d.client.Post(d.base+"/api/v1/incidents", "application/json",
			strings.NewReader(fmt.Sprintf(`{"title":%q,"severity":"S2","declared_by":"maria"}`, title)))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if r := declare("before the crash"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare on PostgreSQL: %d", r.StatusCode)
	}

	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	if r := declare("while down"); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("declare while the database is down: %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/readyz", "/api/v1/incidents/INC-1"} {
		resp, err := d.client.Get(d.base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s while the database is down: %d, want 503", path, resp.StatusCode)
		}
	}

	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	if r := declare("after the restart"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare after the database came back: %d", r.StatusCode)
	}
	resp, err := d.client.Get(d.base + "/api/v1/incidents?limit=10")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	list := string(b)
	if !strings.Contains(list, "before the crash") || !strings.Contains(list, "after the restart") || strings.Contains(list, "while down") {
		t.Errorf("incidents after the restart:\n%s", list)
	}
	if strings.Contains(d.logs.String(), dsn) {
		t.Error("the DSN reached the log")
	}
}

// Two replicas on one database behind one name (a load balancer): a login
// on one works on the other, and a logout on either ends the session on
// both, even for a copy of the cookie.
func TestReplicasShareWebSessions(t *testing.T) {
	pg := testPostgres(t)
	dsn := pg.NewDatabase(t)
	const token = "web-token-0123456789-example"
	cfg := fmt.Sprintf("store:\n  postgres:\n    dsn: %q\nauth:\n  tokens:\n    - name: web\n      token: %s\n      scopes: [read, write]\n", dsn, token)
	a := startDaemon(t, cfg, nil, "http")
	b := startDaemon(t, cfg, nil, "http")
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	do := func(method, url string, form url.Values) (int, string, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		for _, c := range resp.Cookies() {
			if c.Name == "responder_session" && c.Value != "" {
				cookie = c
			}
		}
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(page)
	}
	csrf := func(page string) string {
		t.Helper()
		_, rest, ok := strings.Cut(page, `name="csrf" value="`)
		if !ok {
			t.Fatalf("no CSRF field in:\n%s", page)
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}

	_, _, page := do(http.MethodGet, a.base+"/login", nil)
	if status, loc, _ := do(http.MethodPost, a.base+"/login", url.Values{"token": {token}, "csrf": {csrf(page)}, "next": {"/"}}); status != http.StatusSeeOther || loc != "/" {
		t.Fatalf("login on a: %d to %q", status, loc)
	}
	loggedIn := *cookie
	status, loc, page := do(http.MethodGet, b.base+"/", nil)
	if status != http.StatusOK {
		t.Fatalf("the list on b with a's login: %d to %q", status, loc)
	}
	if status, _, _ := do(http.MethodPost, b.base+"/logout", url.Values{"csrf": {csrf(page)}}); status != http.StatusSeeOther {
		t.Fatalf("logout on b: %d", status)
	}
	cookie = &loggedIn // a copy of the cookie from before the logout
	if status, loc, _ := do(http.MethodGet, a.base+"/", nil); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("a took a session logged out on b: %d to %q", status, loc)
	}
}

// responder migrate: a bbolt file made by the daemon (incidents with alerts,
// a resolution, an idempotency record, unmatched input, notifications still
// owed) is copied into an empty PostgreSQL database; a daemon on it answers
// the API the same, and delivers what was owed. A second copy into the
// now non-empty database is refused, as is a file a daemon holds.
func TestMigrateBboltToPostgres(t *testing.T) {
	pg := testPostgres(t)
	dsn := pg.NewDatabase(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// Slack on a closed port: the announcements stay owed in the outbox.
	closed := closedPort(t)
	bboltCfg := filepath.Join(dir, "bbolt.yml")
	const heartbeat = "heartbeats:\n  - {name: backups, interval: 24h}\n"
	e2eWriteFile(t, bboltCfg, fmt.Sprintf("data_dir: %s\nnotifications:\n  log: false\n  slack:\n    token: xoxb-migrate-example\n    api_url: http://%s/api/\n    channel: \"#incidents\"\n", data, closed)+heartbeat)

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", bboltCfg, "--listen", "127.0.0.1:0"}, noEnv, logs, logs)
	}()
	base := "http://" + servingAddr(t, logs, done)
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(path, body string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 4 {
		post("/api/v1/incidents", fmt.Sprintf(`{"title":"incident %d","severity":"S2","declared_by":"maria"}`, i))
	}
	post("/api/v1/incidents", `{"title":"with a key","severity":"S3","declared_by":"maria"}`, "Idempotency-Key", "key-1")
	post("/api/v1/incidents/INC-2/resolve", `{"by":"maria","summary":"done"}`)
	if code := post("/api/v1/incidents/INC-1/action-items", `{"title":"Alert on replication lag","owner":"dev","due":"2026-12-24","by":"maria"}`); code != http.StatusCreated {
		t.Fatalf("action item: %d", code)
	}
	if code := post("/api/v1/heartbeats/backups", ""); code != http.StatusAccepted {
		t.Fatalf("ping: %d", code)
	}
	am := `{"version":"4","groupKey":"{}:{alertname=\"Migrated\"}","status":"%s","receiver":"r","groupLabels":{},"commonLabels":{},"commonAnnotations":{},
		"externalURL":"http://am.example","alerts":[{"status":"%s","labels":{"alertname":"Migrated","severity":"critical"},"annotations":{},
		"startsAt":"2026-12-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp1"}]}`
	post("/api/v1/alerts/alertmanager", fmt.Sprintf(am, "firing", "firing"))
	post("/api/v1/alerts/alertmanager", strings.ReplaceAll(fmt.Sprintf(am, "resolved", "resolved"), "Migrated", "NeverSeen"))

	// A daemon holds the file: refused.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--from", data, "--to-postgres", dsn}, noEnv, &out, &errOut); code == 0 {
		t.Fatalf("migrate took a file a daemon holds:\n%s", out.String())
	}
	before := map[string]string{}
	for _, path := range []string{"/api/v1/incidents?limit=50", "/api/v1/incidents/INC-1", "/api/v1/incidents/INC-6", "/api/v1/action-items"} {
		before[path] = getBody(t, client, base+path)
	}
	cancel()
	<-done

	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"migrate", "--from", data, "--to-postgres", dsn}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"6 incidents", "1 idempotency records", "1 unmatched", "(1 resolved)", "1 heartbeats", "6 checklists", "1 action items", "pending", "counts checked"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("migrate said %q, want %q in it", out.String(), want)
		}
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"migrate", "--from", data, "--to-postgres", dsn}, noEnv, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "empty") || strings.Contains(errOut.String(), dsn) {
		t.Errorf("a second migrate into the same database: exit %d, %q", code, errOut.String())
	}

	// Served from PostgreSQL: the same answers; the next id follows.
	slack := slacktest.New("xoxb-migrate-example")
	t.Cleanup(slack.Close)
	slack.AddChannel("incidents")
	d := startDaemon(t, fmt.Sprintf("store:\n  postgres:\n    dsn: %q\nnotifications:\n  log: false\n  slack:\n    token: xoxb-migrate-example\n    api_url: %s\n    channel: \"#incidents\"\n    rate_per_second: 10\n    burst: 10\n", dsn, slack.URL())+heartbeat, nil, "http")
	for path, want := range before {
		// The daemon on PostgreSQL starts delivering what is owed at once:
		// what delivery writes (the Slack thread, the notifications'
		// states) may already have moved on; the rest must be the same.
		if got, want := undelivered(t, getBody(t, d.client, d.base+path)), undelivered(t, want); got != want {
			t.Errorf("%s differs after the move:\nbbolt:    %s\npostgres: %s", path, want, got)
		}
	}
	if m := getBody(t, d.client, d.base+"/metrics"); !strings.Contains(m, `responder_heartbeat_last_ping_timestamp_seconds{heartbeat="backups"} 1.`) {
		t.Errorf("the heartbeat's last ping did not move:\n%s", m)
	}
	resp, err := d.client.Post(d.base+"/api/v1/incidents", "application/json", strings.NewReader(`{"title":"after","severity":"S3","declared_by":"maria"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	_ = resp.Body.Close()
	if created.ID != "INC-7" {
		t.Errorf("the first incident after the move is %q, want INC-7", created.ID)
	}
	// What was owed is delivered: an announcement for each of the six, and
	// the seventh's.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for roots := 0; roots < 7; {
		roots = 0
		for _, p := range slack.Posts() {
			if p.Method == slacktest.MethodPostMessage && p.ThreadTS == "" {
				roots++
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d of 7 announcements delivered after the move", roots)
		}
	}
}

// undelivered is an API answer without what delivering notifications
// changes: the incidents' Slack thread, their notifications and the
// timeline's lines about them.
func undelivered(t *testing.T, body string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	var strip func(any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "slack_channel")
			delete(x, "slack_ts")
			delete(x, "notifications")
			if tl, ok := x["timeline"].([]any); ok {
				kept := []any{}
				for _, e := range tl {
					if m, ok := e.(map[string]any); !ok || m["kind"] != "notification" {
						kept = append(kept, e)
					}
				}
				x["timeline"] = kept
			}
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func getBody(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Reminders run on every replica, and each is posted once in the cluster:
// the replica that posts one records it in the same transaction, holding
// the incident's row, and the others then find it posted.
func TestRemindersOncePerCluster(t *testing.T) {
	pg := testPostgres(t)
	cfg, err := configs.Load("", configs.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // the replicas' clock, unix nanoseconds
	clock.Store(opened.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	replicas := func(dsn string, n int) []*incident.Service {
		var out []*incident.Service
		for range n {
			db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			svc := incident.New(incident.Config{}, incident.Deps{Store: db, Policy: pol, Log: zerolog.Nop(), Now: now})
			out = append(out, svc)
		}
		return out
	}
	reminders := func(svc *incident.Service, id string) int {
		v, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range v.Timeline {
			if e.Kind == store.KindReminder {
				n++
			}
		}
		return n
	}
	// How many one replica alone posts for an S1 without an update for an
	// hour and a minute.
	run := func(svcs []*incident.Service) int {
		clock.Store(opened.UnixNano())
		v, _, err := svcs[0].Declare(context.Background(), incident.DeclareRequest{Title: "Checkout down", Severity: "S1", DeclaredBy: "maria"}, "", incident.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		clock.Store(opened.Add(61 * time.Minute).UnixNano())
		var wg sync.WaitGroup
		for _, svc := range svcs {
			wg.Go(func() {
				if err := svc.Remind(context.Background()); err != nil {
					t.Errorf("remind: %v", err)
				}
			})
		}
		wg.Wait()
		return reminders(svcs[0], v.ID)
	}
	alone := run(replicas(pg.NewDatabase(t), 1))
	three := run(replicas(pg.NewDatabase(t), 3))
	if alone == 0 || three != alone {
		t.Errorf("three replicas posted %d reminders, one alone %d: want the same, at least one", three, alone)
	}
}

// The database restarting under load: every alert answered 202 is there
// afterwards; while it is down the answers are 503 with Retry-After, never
// another 5xx; the daemon goes on by itself once it is back.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	pg := testPostgres(t)
	d := startDaemon(t, fmt.Sprintf("store:\n  postgres:\n    dsn: %q\n", pg.NewDatabase(t)), nil, "http")

	var mu sync.Mutex
	accepted := map[string]bool{}
	statuses := map[int]int{}
	progress := make(chan int, 1024) // each answer's status, as it comes
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				g := next.Add(1)
				key := fmt.Sprintf(`{}:{alertname="Restart%d"}`, g)
				body := fmt.Sprintf(`{"version":"4","groupKey":%q,"status":"firing","receiver":"r","groupLabels":{},"commonLabels":{},
					"commonAnnotations":{},"externalURL":"http://am.example","alerts":[{"status":"firing","labels":{"alertname":"Restart%d"},
					"annotations":{},"startsAt":"2026-12-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"r%d"}]}`, key, g, g)
				resp, err := d.client.Post(d.base+"/api/v1/alerts/alertmanager", "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("webhook: %v", err)
					return
				}
				_ = resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusAccepted {
					accepted[key] = true
				}
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					t.Errorf("a 503 without Retry-After")
				}
				mu.Unlock()
				select {
				case progress <- resp.StatusCode:
				default:
				}
			}
		})
	}
	waitFor := func(what string, want int, n int) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for seen := 0; seen < n; {
			select {
			case status := <-progress:
				if status == want {
					seen++
				}
			case <-deadline:
				t.Fatalf("no %d answers of %d while %s", n, want, what)
			}
		}
	}
	waitFor("the database is up", http.StatusAccepted, 50)
	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	waitFor("the database is down", http.StatusServiceUnavailable, 20)
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor("the database is back", http.StatusAccepted, 50)
	stop()
	wg.Wait()

	for status, n := range statuses {
		if status >= 500 && status != http.StatusServiceUnavailable {
			t.Errorf("%d answers of %d: only 503 may be a 5xx", n, status)
		}
	}
	stored := map[string]bool{}
	for before := ""; ; {
		var page struct {
			Incidents []struct {
				DedupKey string `json:"dedup_key"`
			}
			Next string
		}
		e2eGetJSON(t, d.client, d.base, "", "/api/v1/incidents?limit=500"+before, &page)
		for _, inc := range page.Incidents {
			stored[inc.DedupKey] = true
		}
		if page.Next == "" {
			break
		}
		before = "&before=" + page.Next
	}
	lost := 0
	for key := range accepted {
		if !stored[key] {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d of %d alerts answered 202 are missing after the restart", lost, len(accepted))
	}
	t.Logf("answers: %v; %d accepted, %d stored", statuses, len(accepted), len(stored))
}

// A silent heartbeat checked by three replicas at the same moment opens
// one incident: one open incident per heartbeat is a unique key.
func TestHeartbeatSilenceOncePerCluster(t *testing.T) {
	started := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	pol := &policy.Policy{Heartbeats: []policy.Heartbeat{{Name: "watchdog", Interval: time.Minute, Grace: time.Minute, Severity: policy.S2}}}
	incs := onThreeReplicas(t, incident.Config{}, pol, started, started.Add(3*time.Minute), (*incident.Service).CheckHeartbeats)
	if len(incs) != 1 || incs[0].Title != "monitoring is silent: watchdog" {
		t.Errorf("incidents after three replicas checked: %+v, want one silence", incs)
	}
}

// A scheduled drill due while three replicas check the schedule at once
// starts once.
func TestScheduledDrillOncePerCluster(t *testing.T) {
	started := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	weekly, err := policy.ParseCron("0 10 * * wed")
	if err != nil {
		t.Fatal(err)
	}
	cfg := incident.Config{
		Scenarios: map[string]incident.Scenario{"database-failover": {Title: "Primary database lost", Severity: policy.S1}},
		Schedule:  []incident.ScheduledDrill{{Name: "weekly", Scenario: "database-failover", Cron: weekly, Location: time.UTC, Organiser: "maria"}},
	}
	incs := onThreeReplicas(t, cfg, &policy.Policy{}, started, started.Add(time.Hour+time.Minute), (*incident.Service).StartScheduledDrills)
	if len(incs) != 1 || !incs[0].Drill || incs[0].Scheduled != "weekly" {
		t.Errorf("incidents after three replicas checked: %+v, want one drill", incs)
	}
}

// onThreeReplicas starts three incident services on one new PostgreSQL
// database at started, moves their clock to at, runs timer on all three
// at once and returns the incidents there are then.
func onThreeReplicas(t *testing.T, cfg incident.Config, pol *policy.Policy, started, at time.Time, timer func(*incident.Service, context.Context) error) []store.Incident {
	t.Helper()
	pg := testPostgres(t)
	dsn := pg.NewDatabase(t)
	var clock atomic.Int64
	clock.Store(started.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	var svcs []*incident.Service
	for range 3 {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		svcs = append(svcs, incident.New(cfg, incident.Deps{Store: db, Policy: pol, Log: zerolog.Nop(), Now: now}))
	}
	clock.Store(at.UnixNano())
	var wg sync.WaitGroup
	for _, svc := range svcs {
		wg.Go(func() {
			if err := timer(svc, context.Background()); err != nil {
				t.Errorf("timer: %v", err)
			}
		})
	}
	wg.Wait()
	list, err := svcs[0].List(context.Background(), incident.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Incidents
}
