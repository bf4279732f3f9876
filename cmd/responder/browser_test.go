//go:build unix

package main

// The web pages in a real browser: Debian's headless Chromium, driven by
// chromedp, against the built responder binary on loopback over plain HTTP
// (where the session cookie is not Secure). A person logs in, declares,
// opens, staffs, updates and resolves an incident through the forms; an
// Alertmanager alert carrying <script> renders as text; a form without its
// CSRF token is refused; local times are filled in; the list fits a phone.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/responder-sre/responder/integrations/opsgenie/opsgenietest"
)

const (
	browserChromium = "/usr/bin/chromium"
	// browserStepTimeout bounds one browser step: a navigation, a form
	// post, a query. Each takes well under a second here.
	browserStepTimeout = 15 * time.Second
	// browserStartTimeout bounds Chromium's start and first page.
	browserStartTimeout = 30 * time.Second
	// browserTZ is the browser's time zone: half an hour off any UTC
	// hour, no daylight saving time.
	browserTZ = "Asia/Kolkata"
	// browserDeliverTimeout bounds how long the notifications of a change
	// take to be delivered (or fail) and show on the page.
	browserDeliverTimeout = 20 * time.Second
	// envScreenshots names a folder to keep the screenshots in; without
	// it they go to the test's temp folder.
	envScreenshots = "RESPONDER_SCREENSHOTS"
)

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test with headless Chromium: skipped with -short")
	}
	if _, err := os.Stat(browserChromium); err != nil {
		t.Fatalf("%s not found (%v): install Debian's chromium package (make test installs it when missing)", browserChromium, err)
	}
	shots := os.Getenv(envScreenshots)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatalf("screenshot folder %s: %v", shots, err)
	}

	env := browserStartResponder(t, e2eBuild(t))
	b := browserStart(t, env.url)

	// Logging in: the list sends a visitor without a session to the form.
	b.do("open the list", chromedp.Navigate(env.url+"/"), chromedp.WaitVisible(chromedp.ID("login-form")))
	if loc := b.location(); !strings.Contains(loc, "/login?next=") {
		t.Errorf("a visitor not logged in is at %s, want the login page", loc)
	}
	b.do("type a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-a-token"))
	if status := b.submit("log in with a wrong token", "#login-submit"); status != http.StatusUnauthorized {
		t.Errorf("login with a wrong token answered %d, want 401", status)
	}
	b.wantText("#login-error", "invalid token")
	b.do("type the token", chromedp.SendKeys(chromedp.ID("token"), env.webToken))
	if status := b.submit("log in", "#login-submit"); status != http.StatusOK {
		t.Fatalf("login answered %d, want the list (200)", status)
	}
	b.do("see the list", chromedp.WaitVisible(chromedp.ID("incidents")))
	b.wantText("#user", "web-operator")
	b.checkSessionCookie()

	// Declare an incident through the form.
	const title = "Checkout API returns 502 for 30% of requests"
	b.do("open the declare form", chromedp.Navigate(env.url+"/new"), chromedp.WaitVisible(chromedp.ID("declare-form")),
		chromedp.SetValue(chromedp.ID("declare-title"), title),
		chromedp.SetValue(chromedp.ID("declare-severity"), "S2"),
		chromedp.SetValue(chromedp.ID("declare-description"), "Payments fail at the last step since the 14:05 deploy; retries mostly succeed."),
		chromedp.SetValue(chromedp.ID("declare-labels"), "service=checkout\nenv=production\nregion=eu-west-1"),
		chromedp.Click(chromedp.ID("declare-customer-impact")),
		chromedp.SetValue(chromedp.ID("declare-by"), "alice"),
	)
	if status := b.submit("declare", "#declare-submit"); status != http.StatusOK {
		t.Fatalf("declare answered %d, want the incident page (200)", status)
	}
	id := b.text("#incident-id")
	if !strings.HasPrefix(id, "INC-") {
		t.Fatalf("after declaring, the page shows incident id %q", id)
	}
	b.wantText("#incident-title", title)
	b.wantText("#incident-severity", "S2")
	b.wantText("#incident-status", "open")

	// See it in the list, and open it from there.
	b.do("find it in the list", chromedp.Navigate(env.url+"/"), chromedp.WaitVisible(chromedp.ID("row-"+id)))
	b.wantText("#row-"+id, title)
	b.wantText("#row-"+id+" .status", "open")
	if status := b.submit("open it from the list", "#row-"+id+" a.incident-link"); status != http.StatusOK {
		t.Fatalf("opening %s from the list answered %d", id, status)
	}
	b.wantText("#incident-id", id)

	// The same person for both roles: 422 and the message beside the form.
	b.form("set the same person twice", "roles", http.StatusUnprocessableEntity, "recovery", "bob", "comms", "Bob", "by", "alice")
	b.wantText("#roles-error", "must be different people")
	b.wantText("#recovery-lead", "nobody yet")

	b.form("set the roles", "roles", http.StatusOK, "recovery", "bob", "comms", "carol", "by", "alice")
	b.wantText("#recovery-lead", "bob")
	b.wantText("#comms-lead", "carol")
	b.wantAbsent("#roles-error")

	// The checklist of the basic process: ticking a box marks the step
	// done by the person logged in; unticking asks why first, then opens
	// it again; Skip takes a reason.
	b.wantText("#checklist-count", "0 of 8 marked")
	if status := b.submit("tick the first step", "#box-incident-process-1"); status != http.StatusOK {
		t.Fatalf("ticking a step answered %d, want the incident page (200)", status)
	}
	b.wantText("#step-incident-process-1 .step-mark", "done by web-operator")
	b.wantText("#checklist-count", "1 of 8 marked")
	b.wantText("#timeline", `step incident-process/1 "Determine the severity`)
	b.do("untick without a reason", chromedp.Click(chromedp.ID("box-incident-process-1")))
	if got := b.eval("the box after unticking without a reason", `String(document.getElementById("box-incident-process-1").checked) + " " + (document.activeElement && document.activeElement.className)`); got != "true step-reason" {
		t.Errorf("unticking without a reason: box checked and focus %q, want the box ticked still and the reason field focused", got)
	}
	b.do("say why", chromedp.SetValue(chromedp.CSS("#step-incident-process-1 .step-reason"), "ticked too early"))
	if status := b.submit("untick with a reason", "#box-incident-process-1"); status != http.StatusOK {
		t.Fatalf("unticking answered %d", status)
	}
	b.wantText("#timeline", "open again (by web-operator): ticked too early")
	if n := b.evalInt("open first step", `document.querySelectorAll("#step-incident-process-1.step-open").length`); n != 1 {
		t.Errorf("the first step is not open again after unticking")
	}
	b.do("say why the step is skipped", chromedp.SetValue(chromedp.CSS("#step-incident-process-5 .step-reason"), "customer engineering was told at declaration"),
		chromedp.SetValue(chromedp.CSS("#step-incident-process-5 .step-by"), "alice"))
	if status := b.submit("skip a step", "#step-incident-process-5 .step-skip"); status != http.StatusOK {
		t.Fatalf("skipping answered %d", status)
	}
	b.wantText("#step-incident-process-5 .step-mark", "skipped by alice")
	b.wantText("#step-incident-process-5 .step-mark", "customer engineering was told at declaration")

	const update = "Rolled back deploy 2026.11.22-3; error rate down from 30% to 4% and falling"
	eta := time.Now().UTC().Add(45 * time.Minute).Truncate(time.Minute)
	// The ETA is typed in the browser's own time (Asia/Kolkata) and kept
	// in UTC.
	b.wantText("label[for=update-eta]", "your local time")
	b.form("post the update", "update", http.StatusOK, "text", update, "eta", eta.In(time.FixedZone("IST", 5*3600+1800)).Format("2006-01-02 15:04"), "by", "carol")
	b.wantText("#incident-eta", eta.Format("2006-01-02 15:04 UTC"))
	b.wantText("#timeline", update)

	// Local times: the script writes the browser's time beside each UTC one.
	local := b.eval("the local time beside the ETA", `(() => {
		const t = document.querySelector("#incident-eta time");
		const s = t && t.nextElementSibling;
		return t ? t.textContent + " " + (s ? s.textContent : "") : "";
	})()`)
	wantLocal := eta.In(time.FixedZone("IST", 5*3600+1800)).Format("03:04")
	if !strings.Contains(local, eta.Format("15:04 UTC")) || !strings.Contains(local, wantLocal) || !strings.Contains(local, "local)") {
		t.Errorf("the ETA reads %q, want the UTC time and the local time (%s in %s) beside it", local, wantLocal, browserTZ)
	}
	if n := b.evalInt("times without a local time", `[...document.querySelectorAll(".when")].filter(w => !/local\)$/.test(w.querySelector(".local").textContent)).length`); n != 0 {
		t.Errorf("%d times on the incident page have no local time beside them", n)
	}
	// Every notification so far is delivered or failed; the post to the
	// customer channel, which Slack does not know, shows as failed.
	b.waitPage("the notifications delivered or failed", env.url+"/incidents/"+id,
		`document.querySelectorAll("#notifications tr.state-failed").length > 0 && document.querySelectorAll("#notifications tr.state-pending").length == 0`)
	// Two: the opening and the ETA, both told to customer engineering.
	b.wantText("#failed-count", "2 failed")
	b.wantText("#notifications tr.state-failed", "channel_not_found")
	b.wantText("#notifications tr.state-failed", "#customer-engineering")
	if n := b.evalInt("delivered Slack posts", `[...document.querySelectorAll("#notifications tr.state-sent")].filter(r => r.textContent.includes("slack")).length`); n == 0 {
		t.Errorf("no Slack notification shows as sent")
	}
	b.screenshot(shots, "incident-page.png", 1200, 900)

	// Raise the severity with a reason, and add a note.
	b.form("change the severity", "severity", http.StatusOK, "value", "S1", "reason", "every checkout fails", "by", "alice")
	b.wantText("#incident-severity", "S1")
	b.wantText("#timeline", "every checkout fails (set by alice)")
	b.form("add the note", "note", http.StatusOK, "text", "connection pool exhausted on db-2", "by", "bob")
	b.wantText("#timeline", "note from bob: connection pool exhausted on db-2")

	// Customers turn out to be spared: the Customers form clears the
	// impact declared, for a reason.
	b.wantText("#incident-customers", "affected")
	b.form("clear customer impact", "customers", http.StatusOK, "reason", "only staff accounts were hit", "by", "dev")
	b.wantText("#incident-customers", "not marked as affected")
	b.wantText("#timeline", "customer impact cleared by dev: only staff accounts were hit")

	// Page the team lead now, from the page: the page shows who was paged
	// and how the page went.
	b.form("page someone", "page", http.StatusOK, "responder", "user:lead@example.com", "reason", "we need a decision on failing over", "by", "alice")
	b.wantText("#timeline", "paging user:lead@example.com now, asked by alice: we need a decision on failing over")
	b.waitPage("the page delivered", env.url+"/incidents/"+id,
		`document.querySelector("#incident-paged").textContent.includes("user:lead@example.com through opsgenie (delivered)")`)
	// Out of business hours the raise to S1 paged the team first, and the
	// lead is added to that alert; in hours the lead's page creates it.
	lead := slices.ContainsFunc(env.og.Creates(), func(c opsgenietest.Create) bool {
		return len(c.Request.Responders) == 1 && c.Request.Responders[0].Username == "lead@example.com"
	}) || slices.ContainsFunc(env.og.AddResponders(), func(a opsgenietest.AddResponder) bool { return a.Responder.Username == "lead@example.com" })
	if !lead {
		t.Errorf("OpsGenie never heard of lead@example.com: %+v", env.og.Requests())
	}

	b.form("resolve", "resolve", http.StatusOK, "summary", "Bad connection-pool setting in deploy 2026.11.22-3; rolled back, error rate back to 0.1%.", "by", "bob")
	b.wantText("#incident-status", "resolved")
	b.wantAbsent("#actions")
	timeline := b.text("#timeline")
	for _, want := range []string{"declared", "roles", "bob", "carol", "update", update, "resolved", "— alice", "— carol", "— bob"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, timeline)
		}
	}
	b.screenshot(shots, "incident-resolved.png", 1200, 900)

	// The post-mortem owed is saved; a person writes its lessons in the
	// editor and the review marks it reviewed.
	b.wantText("#postmortem-link", "owed, version 1")
	if status := b.submit("open the post-mortem editor", "#postmortem-link"); status != http.StatusOK {
		t.Fatalf("the post-mortem editor answered %d", status)
	}
	b.wantText("#pm-state", "owed")
	b.do("write the lessons learned", chromedp.Evaluate[chromedp.Void](`(() => {
		const ta = document.getElementById("pm-markdown");
		ta.value = ta.value.replace("_What went well, what went badly, where we were lucky._", "The rollback was quick; the connection-pool limit had no alert.");
	})()`), chromedp.SetValue(chromedp.ID("pm-note"), "lessons learned"), chromedp.SetValue(chromedp.ID("pm-by"), "carol"))
	if status := b.submit("save the post-mortem", "#pm-submit"); status != http.StatusOK {
		t.Fatalf("saving the post-mortem answered %d", status)
	}
	b.wantText("#pm-state", "drafted")
	b.wantText("#pm-version", "2, saved by carol")
	b.wantText("#pm-versions", "version 2 by carol")
	if got := b.eval("the saved text", `document.getElementById("pm-markdown").value`); !strings.Contains(got, "the connection-pool limit had no alert") {
		t.Errorf("the editor shows, after saving:\n%s", got)
	}
	b.form("review the post-mortem", "review", http.StatusOK, "by", "alice")
	b.wantText("#pm-state", "reviewed")
	b.wantText("#pm-reviewed", "by alice")
	b.screenshot(shots, "postmortem-editor.png", 1200, 900)
	b.do("back to the incident", chromedp.Navigate(env.url+"/incidents/"+id), chromedp.WaitVisible(chromedp.ID("incident")))

	// A resolved incident can be reopened, for a reason.
	b.form("reopen", "reopen", http.StatusOK, "reason", "errors are back after the rollback", "by", "carol")
	b.wantText("#incident-status", "open")
	b.wantText("#timeline", "errors are back after the rollback (by carol)")
	b.form("resolve again", "resolve", http.StatusOK, "by", "bob")
	b.wantText("#incident-status", "resolved")

	// An alert whose labels and annotations hold markup renders as text.
	xssID := env.postAlert(t)
	b.do("open the alert's incident", chromedp.Navigate(env.url+"/incidents/"+xssID), chromedp.WaitVisible(chromedp.ID("alerts")))
	alerts := b.text("#alerts")
	for _, want := range []string{`<script>window.__xss=1</script>`, `<img src=x onerror="window.__xss=2">`} {
		if !strings.Contains(alerts, want) {
			t.Errorf("the alert's markup %s is not shown as text; the alerts read:\n%s", want, alerts)
		}
	}
	b.wantText("#incident-title", "<b>Disk</b>")
	if n := b.evalInt("elements from the alert", `document.querySelectorAll("main script, main img, main b").length`); n != 0 {
		t.Errorf("the alert's markup made %d elements in the page", n)
	}
	if got := b.eval("the payload's global", `typeof window.__xss`); got != "undefined" {
		t.Errorf("window.__xss is %s: the alert's script ran", got)
	}

	// A form post without the CSRF token is refused with 403, and the
	// acknowledgement does not happen.
	b.do("remove the ack form's CSRF field", chromedp.SetValue(chromedp.ID("ack-by"), "mallory"))
	if n := b.evalInt("remove the CSRF field", `(() => { const f = document.querySelector("#ack-form input[name=csrf]"); f.remove(); return document.querySelectorAll("#ack-form input[name=csrf]").length; })()`); n != 0 {
		t.Fatalf("the ack form still has %d CSRF fields", n)
	}
	if status := b.submit("acknowledge without the CSRF token", "#ack-submit"); status != http.StatusForbidden {
		t.Errorf("a form post without the CSRF token answered %d, want 403", status)
	}
	b.wantText("#error-message", "security token is missing")
	b.do("reopen the alert's incident", chromedp.Navigate(env.url+"/incidents/"+xssID), chromedp.WaitVisible(chromedp.ID("incident")))
	b.wantText("#incident-status", "open")

	// The list at desktop width, then at phone width without sideways
	// scrolling.
	b.do("open the list", chromedp.Navigate(env.url+"/"), chromedp.WaitVisible(chromedp.ID("row-"+xssID)))
	b.wantText("#row-"+id+" .status", "resolved")
	b.screenshot(shots, "list.png", 1200, 900)
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("row-"+xssID)))
	width := b.evalInt("page width at 390px", `document.documentElement.scrollWidth - window.innerWidth`)
	if width > 0 {
		t.Errorf("at 390px the list is %dpx wider than the screen: it scrolls sideways", width)
	}
	b.screenshot(shots, "list-phone.png", 390, 844)
	b.do("phone width, incident page", chromedp.Navigate(env.url+"/incidents/"+id), chromedp.WaitVisible(chromedp.ID("incident")))
	if width := b.evalInt("incident page width at 390px", `document.documentElement.scrollWidth - window.innerWidth`); width > 0 {
		t.Errorf("at 390px the incident page is %dpx wider than the screen: it scrolls sideways", width)
	}

	// Nothing on any page threw.
	if errs := b.exceptions(); len(errs) != 0 {
		t.Errorf("JavaScript exceptions in the pages: %s", strings.Join(errs, "; "))
	}
	t.Logf("screenshots in %s", shots)
}

// browserEnv is one responder serving the pages.
type browserEnv struct {
	url         string
	webToken    string
	ingestToken string
	client      *http.Client
	og          *opsgenietest.Server // the pager
}

const browserOGKey = "browser-opsgenie-key-0000"

func browserStartResponder(t *testing.T, bin string) *browserEnv {
	t.Helper()
	dir := t.TempDir()
	env := &browserEnv{
		webToken:    "web-" + e2eRandomHex(t, 16),
		ingestToken: "ingest-" + e2eRandomHex(t, 16),
		client:      &http.Client{Timeout: 5 * time.Second},
		og:          opsgenietest.New(browserOGKey),
	}
	t.Cleanup(env.og.Close)
	sock, addr := heldSocket(t)
	env.url = "http://" + addr
	cfg := filepath.Join(dir, "responder.yml")
	e2eWriteFile(t, cfg, fmt.Sprintf(`listen: %s
data_dir: %s
log:
  level: info
  format: json
auth:
  tokens:
    - name: web-operator
      token: %s
      scopes: [read, write]
    - name: alertmanager
      token: %s
      scopes: [ingest]
notifications:
  log: true
  retry_base: 100ms
  slack:
    token: xoxb-browser-test
    api_url: %s/api/
    channel: "#incidents"
    customer_channel: "#customer-engineering"
    rate_per_second: 10
    burst: 10
  opsgenie:
    api_key: %s
    api_url: %s
    responder:
      type: team
      name: sre-oncall
`, addr, filepath.Join(dir, "data"), env.webToken, env.ingestToken, browserFakeSlack(t), browserOGKey, env.og.Host()))
	p := e2eStartProcess(t, "responder", filepath.Join(dir, "responder.log"), nil, sock, bin, "serve", "--config", cfg)
	e2eWaitReady(t, p, env.client, env.url+"/readyz")
	return env
}

// browserFakeSlack is a Slack Web API on loopback that posts to every
// channel but the customer one, which it does not know (channel_not_found,
// an error Slack does not retry): the incident page shows that post failed.
func browserFakeSlack(t *testing.T) string {
	t.Helper()
	var ts int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		channel := r.PostFormValue("channel")
		switch {
		case r.URL.Path == "/api/chat.postMessage" && channel == "#customer-engineering":
			_, _ = fmt.Fprint(w, `{"ok":false,"error":"channel_not_found"}`)
		case r.URL.Path == "/api/chat.postMessage" || r.URL.Path == "/api/chat.update":
			mu.Lock()
			ts++
			n := ts
			mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"ok":true,"channel":"C0INCIDENTS","ts":"1763800000.%06d","message":{"text":"","ts":"1763800000.%06d"}}`, n, n)
		default:
			_, _ = fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// postAlert sends an Alertmanager webhook whose labels and annotations hold
// markup and returns the incident it opened.
func (env *browserEnv) postAlert(t *testing.T) string {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	labels := map[string]string{
		"alertname": "<b>Disk</b>Full",
		"severity":  "warning",
		"instance":  `<script>window.__xss=1</script>`,
	}
	body, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}:{alertname="<b>Disk</b>Full"}`, "status": "firing", "receiver": "responder",
		"groupLabels":       map[string]string{"alertname": labels["alertname"]},
		"commonLabels":      labels,
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example",
		"alerts": []map[string]any{{
			"status": "firing", "labels": labels, "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
			"annotations":  map[string]string{"summary": `<img src=x onerror="window.__xss=2">`},
			"generatorURL": "javascript:window.__xss=3", "fingerprint": "0123456789abcdef",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, env.url+"/api/v1/alerts/alertmanager", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+env.ingestToken)
	resp, err := env.client.Do(req)
	if err != nil {
		t.Fatalf("post the alert: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct {
		Incidents []struct {
			ID string `json:"id"`
		} `json:"incidents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("post the alert: %s: decode the answer: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusAccepted || len(out.Incidents) != 1 {
		t.Fatalf("post the alert: %s with %d incidents, want 202 and one", resp.Status, len(out.Incidents))
	}
	return out.Incidents[0].ID
}

// browser is one Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	// excs collects the pages' uncaught exceptions (written by chromedp's
	// event goroutine, read after the steps).
	excs chan string
}

// browserStart starts headless Chromium with a fresh profile and opens a
// tab; the browser is closed (and killed if need be) when the test ends.
func browserStart(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], extra...)
	opts = append(opts,
		chromedp.ExecPath(browserChromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
		// Local time differs from UTC, so the local times are seen apart.
		chromedp.Env("TZ="+browserTZ),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(allocCancel) // kills Chromium and waits for it
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_ = chromedp.Cancel(cctx) // a graceful close; allocCancel kills what is left
		cancel()
	})
	b := &browser{t: t, ctx: ctx, excs: make(chan string, 64)}
	// The first run starts the browser; it must not carry a timeout (a
	// timeout on it would stop the browser), so bound it from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", browserChromium, err)
		}
	case <-time.After(browserStartTimeout):
		t.Fatalf("%s did not start within %s", browserChromium, browserStartTimeout)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			select {
			case b.excs <- fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1):
			default:
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to the tab's events: %v", err)
	}
	return b
}

// do runs steps within browserStepTimeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

// submit clicks sel, waits for the page that loads and returns its HTTP
// status (after any redirect).
// form fills the incident page's form name (fields in pairs: the field
// after "name-" in its element id, then the value), submits it with its
// button #name-submit and wants the page answered with status want.
func (b *browser) form(what, name string, want int, fields ...string) {
	b.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(fields); i += 2 {
		steps = append(steps, chromedp.SetValue(chromedp.ID(name+"-"+fields[i]), fields[i+1]))
	}
	b.do("fill the "+name+" form", steps...)
	if status := b.submit(what, "#"+name+"-submit"); status != int64(want) {
		b.t.Fatalf("%s answered %d, want %d", what, status, want)
	}
}

func (b *browser) submit(what, sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
	return resp.Status
}

// text is the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v (at %s)", sel, err, b.location())
	}
	return strings.Join(strings.Fields(s), " ")
}

func (b *browser) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.t.Errorf("%s reads %q, want it to contain %q (at %s)", sel, got, want, b.location())
	}
}

func (b *browser) wantAbsent(sel string) {
	b.t.Helper()
	if n := b.evalInt("count "+sel, fmt.Sprintf("document.querySelectorAll(%q).length", sel)); n != 0 {
		b.t.Errorf("%d elements match %s, want none (at %s)", n, sel, b.location())
	}
}

func (b *browser) eval(what, js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return s
}

func (b *browser) evalInt(what, js string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return n
}

// checkSessionCookie checks the session cookie the browser holds: HttpOnly
// (no script reads it), SameSite=Strict, and not Secure only because this is
// plain HTTP on loopback.
func (b *browser) checkSessionCookie() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		b.t.Fatalf("read the cookies: %v", err)
	}
	var names []string
	for _, c := range res.Cookies {
		names = append(names, c.Name)
		if c.Name != "responder_session" {
			continue
		}
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Secure {
			b.t.Errorf("session cookie: HttpOnly=%v SameSite=%q Secure=%v, want HttpOnly, SameSite=Strict, not Secure over plain HTTP on loopback", c.HTTPOnly, c.SameSite, c.Secure)
		}
		if js := b.eval("document.cookie", "document.cookie"); strings.Contains(js, "responder_session") {
			b.t.Errorf("a script can read the session cookie: %q", js)
		}
		return
	}
	b.t.Errorf("no responder_session cookie after logging in; cookies: %v", names)
}

// waitPage loads url again until the expression js is true, within
// browserDeliverTimeout.
func (b *browser) waitPage(what, url, js string) {
	b.t.Helper()
	deadline := time.Now().Add(browserDeliverTimeout)
	for {
		b.do("load "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main")))
		ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err != nil {
			b.t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %s for %s at %s; the notifications read: %s", browserDeliverTimeout, what, url, b.text("#notifications"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// location is the tab's URL, for messages; "" when it cannot be read.
func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// screenshot writes the whole page as dir/name at the given viewport.
func (b *browser) screenshot(dir, name string, width, height int64) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		b.t.Fatalf("screenshot %s: set the viewport: %v", name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatalf("write screenshot %s: %v", name, err)
	}
}

// exceptions drains the uncaught exceptions seen so far.
func (b *browser) exceptions() []string {
	var out []string
	for {
		select {
		case e := <-b.excs:
			out = append(out, e)
		default:
			return out
		}
	}
}
