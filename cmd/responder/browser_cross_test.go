//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The quick start's daemon (loopback, no tokens) open in the same browser
// as an attacker's page: the page tries every write a browser lets a page
// make to another site without asking (form posts, no-cors fetches with a
// form or text type, a JSON fetch that needs a CORS preflight), and a DNS
// rebinding (the attacker's name pointed at 127.0.0.1, so that the page
// and the daemon share an origin). Nothing is written; the daemon's own log
// shows each attempt refused, with the status that refused it.
func TestBrowserCannotDriveTheLoopbackDefault(t *testing.T) {
	if _, err := os.Stat(browserChromium); err != nil {
		t.Fatalf("%s not found (%v): install Debian's chromium package (make test installs it when missing)", browserChromium, err)
	}
	bin := e2eBuild(t)
	dir := t.TempDir()
	sock, addr := heldSocket(t)
	_, port, _ := net.SplitHostPort(addr)
	daemon := "http://" + addr
	cfg := filepath.Join(dir, "responder.yml")
	e2eWriteFile(t, cfg, fmt.Sprintf("listen: %s\ndata_dir: %s\nlog:\n  level: info\n  format: json\n", addr, filepath.Join(dir, "data")))
	logPath := filepath.Join(dir, "responder.log")
	p := e2eStartProcess(t, "responder", logPath, nil, sock, bin, "serve", "--config", cfg)
	client := &http.Client{Timeout: 5 * time.Second}
	e2eWaitReady(t, p, client, daemon+"/readyz")

	// The attacker's site, at http://evil.test:<its port>/.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, strings.ReplaceAll(evilPage, "DAEMON", daemon))
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := net.SplitHostPort(strings.TrimPrefix(evil.URL, "http://"))
	b := browserStart(t, daemon, chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.1"))

	b.do("open the attacker's page", chromedp.Navigate("http://evil.test:"+evilPort+"/"), chromedp.WaitReady(chromedp.ID("done")))
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	results, err := chromedp.Run(ctx, chromedp.Evaluate[string](`attack()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		t.Fatalf("run the attacker's page: %v", err)
	}
	t.Logf("the attacker's page saw: %s", results)

	// The rebinding: the attacker's name now points at the daemon, so a
	// page loaded from it is same-origin with the daemon's answers.
	rebind := "http://rebind.test:" + port
	b.do("open the daemon under the attacker's name", chromedp.Navigate(rebind+"/"))
	ctx, cancel = context.WithTimeout(b.ctx, browserStepTimeout)
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const read = await fetch("/api/v1/incidents");
		const write = await fetch("/api/v1/incidents", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({title: "rebinding", severity: "S1", declared_by: "evil"})});
		return read.status + " " + write.status + " " + (await read.text());
	})()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		t.Fatalf("fetch under the rebound name: %v", err)
	}
	if !strings.HasPrefix(seen, "421 421 ") || strings.Contains(seen, `"incidents"`) {
		t.Errorf("under the rebound name the page read and wrote %q, want 421 twice and no incident list", seen)
	}

	// Nothing was written, and every attempt reached the daemon and was
	// refused for what it was.
	resp, err := client.Get(daemon + "/api/v1/incidents")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	_ = resp.Body.Close()
	if err != nil || len(list.Incidents) != 0 {
		t.Fatalf("incidents after the attack: %d (%v), want none", len(list.Incidents), err)
	}
	statuses := map[string][]int{}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Message, Method, Path string
			Status                int
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "request" && line.Method == http.MethodPost {
			statuses[line.Path] = append(statuses[line.Path], line.Status)
		}
	}
	// Two no-cors fetches and a text/plain form to the API, the web form,
	// the rebound fetch; the JSON fetch never leaves the browser (its
	// preflight is not answered with CORS), or is refused if it does.
	api, form := statuses["/api/v1/incidents"], statuses["/incidents"]
	if len(api) < 4 || len(form) != 1 {
		t.Fatalf("the daemon saw POSTs %v, want at least 4 to the API and 1 to the form", statuses)
	}
	for _, s := range append(api, form...) {
		if s != http.StatusForbidden && s != http.StatusMisdirectedRequest {
			t.Errorf("a cross-site POST was answered %d (all: %v), want 403 (another site) or 421 (rebound name)", s, statuses)
		}
	}
}

// evilPage is the attacker's page; DAEMON is the daemon's origin. attack()
// makes every attempt and resolves to what the page could see of them.
const evilPage = `<!doctype html>
<html><body>
<form id="plain" method="POST" action="DAEMON/api/v1/incidents" enctype="text/plain" target="sink1">
<input name='{"title":"text form","severity":"S1","declared_by":"evil","pad":"' value='"}'></form>
<form id="web" method="POST" action="DAEMON/incidents" target="sink2">
<input name="title" value="web form"><input name="severity" value="S1"><input name="declared_by" value="evil"></form>
<iframe name="sink1" id="sink1"></iframe><iframe name="sink2" id="sink2"></iframe>
<p id="done">ready</p>
<script>
const body = JSON.stringify({title: "fetched", severity: "S1", declared_by: "evil"});
const loaded = (id) => new Promise((ok) => document.getElementById(id).addEventListener("load", () => ok(id + " loaded"), {once: true}));
async function attack() {
  const out = [];
  for (const type of ["application/x-www-form-urlencoded", "text/plain"]) {
    try {
      const r = await fetch("DAEMON/api/v1/incidents", {method: "POST", mode: "no-cors", headers: {"Content-Type": type}, body});
      out.push("no-cors " + type + ": " + r.type);
    } catch (e) { out.push("no-cors " + type + ": " + e); }
  }
  try {
    const r = await fetch("DAEMON/api/v1/incidents", {method: "POST", headers: {"Content-Type": "application/json"}, body});
    out.push("cors json: " + r.status);
  } catch (e) { out.push("cors json: " + e); }
  const sinks = [loaded("sink1"), loaded("sink2")];
  document.getElementById("plain").submit();
  document.getElementById("web").submit();
  out.push(...await Promise.all(sinks));
  return out.join("; ");
}
</script>
</body></html>`
