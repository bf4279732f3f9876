package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

func noEnv(string) string { return "" }

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "responder ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "check-config"); code != 2 {
		t.Errorf("check-config without a file: %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "serve", "--no-such-flag"); code != 2 {
		t.Errorf("serve with an unknown flag: %d, want 2", code)
	}
}

func TestCheckConfig(t *testing.T) {
	if code, out, errOut := runCLI(t, "check-config", filepath.Join("..", "..", "configs", "example.yml")); code != 0 {
		t.Fatalf("example.yml: exit %d: %s%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	const secret = "s3cret-value-that-must-not-print"
	content := `listen: 0.0.0.0:9095
lsten: oops
auth:
  tokens:
    - name: am
      token: ` + secret + `
      scopes: [ingest, root]
policy:
  default_severity: S9
  rules:
    - matchers: ['severity=~"(critical"']
      severity: S1
  business_hours:
    location: Europe/Atlantis
`
	if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "check-config", bad)
	if code != 1 {
		t.Fatalf("broken config: exit %d, want 1", code)
	}
	for _, want := range []string{"5 problem(s)", "lsten: unknown key (line 2)", "auth.tokens[0].scopes[1]", "policy.default_severity", "policy.rules[0].matchers[0]", "policy.business_hours.location"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, secret) {
		t.Errorf("check-config printed the token")
	}

	// A config that works but loses something says so, and passes.
	jsm := filepath.Join(t.TempDir(), "jsm.yml")
	if err := os.WriteFile(jsm, []byte("notifications:\n  jsm:\n    api_key: "+secret+"\n    responder: {type: team, name: sre}\n"+
		"  pagerduty:\n    routing_key: "+secret+"\n  paging:\n    pager: jsm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check-config", jsm)
	for _, want := range []string{"warning: notifications.jsm.rest is not set", "warning: notifications.pagerduty.rest is not set",
		"warning: notifications.pagerduty.webhook_secrets is not set"} {
		if code != 0 || !strings.Contains(out, want) || strings.Contains(out+errOut, secret) {
			t.Errorf("pagers without rest: exit %d, want %q:\n%s%s", code, want, out, errOut)
		}
	}
}

func TestServeRefusesNonLoopbackWithoutTokens(t *testing.T) {
	code, _, errOut := runCLI(t, "serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "not loopback") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestServeDrainsAndRestarts runs the daemon in-process on the embedded
// default, writes, stops it like SIGTERM does (context cancelled), and
// checks that the database was closed cleanly and holds everything; then
// serves again from the same directory.
func TestServeDrainsAndRestarts(t *testing.T) {
	dataDir := t.TempDir()
	serveOnce := func(fn func(base string)) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		logs := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, noEnv, logs, logs)
		}()
		base := "http://" + servingAddr(t, logs, done)
		client := &http.Client{Timeout: 5 * time.Second}
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := client.Get(base + "/readyz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("not ready within 10s: %v\n%s", err, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		fn(base)
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("serve exit %d:\n%s", code, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("serve did not stop within 15s")
		}
		if !strings.Contains(logs.String(), "store closed") {
			t.Errorf("no clean store close in the log:\n%s", logs.String())
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	serveOnce(func(base string) {
		for i := range 3 {
			body := fmt.Sprintf(`{"title":"incident %d","severity":"S%d","declared_by":"test"}`, i, i+1)
			resp, err := client.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("declare: %d", resp.StatusCode)
			}
		}
	})
	// Closed cleanly: the file opens at once (no lock held) and has it all.
	db, err := bolt.Open(filepath.Join(dataDir, dbFile), bolt.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	var open []store.Incident
	_ = db.View(context.Background(), func(tx store.Tx) error {
		open, err = tx.OpenIncidents()
		return err
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(open) != 3 {
		t.Fatalf("open incidents after restart: %d, want 3", len(open))
	}
	serveOnce(func(base string) {
		resp, err := client.Get(base + "/api/v1/incidents/INC-2")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var inc store.Incident
		if err := json.NewDecoder(resp.Body).Decode(&inc); err != nil || inc.Title != "incident 1" || inc.Severity != "S2" {
			t.Errorf("after restart INC-2 = %+v (%v)", inc, err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the daemon's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// wrote is signalled after each write, for a reader waiting for a
	// line (made on first use; a zero syncBuffer works).
	once  sync.Once
	wrote chan struct{}
}

// written is signalled after each write.
func (s *syncBuffer) written() chan struct{} {
	s.once.Do(func() { s.wrote = make(chan struct{}, 1) })
	return s.wrote
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.written() <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A second daemon on a data directory that a first one serves stops at
// once, saying which process holds the file.
func TestSecondDaemonOnTheSameDataDir(t *testing.T) {
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, noEnv, logs, logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	servingAddr(t, logs, done)

	second := &syncBuffer{}
	start := time.Now()
	code := run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, noEnv, second, second)
	if code == 0 || time.Since(start) > 3*time.Second {
		t.Fatalf("second daemon: exit %d after %s, want a failure at once", code, time.Since(start))
	}
	if want := fmt.Sprintf("another process (pid %d) holds it", os.Getpid()); !strings.Contains(second.String(), want) {
		t.Errorf("second daemon said:\n%s\nwant %q", second.String(), want)
	}
}

// The quick start on the embedded default shows, in the log, what each
// vendor would receive: the Slack post, the mail's subject and first lines,
// and, out of business hours, the page nobody can send.
func TestQuickStartLogShowsWhatVendorsWouldReceive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, noEnv, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s")
		}
	})
	base := "http://" + servingAddr(t, logs, done)
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(base+"/api/v1/incidents", "application/json",
		strings.NewReader(`{"title":"Checkout returns 500s","severity":"S2","declared_by":"maria","customer_impact":true}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("declare: %d", resp.StatusCode)
	}
	want := []string{
		"slack would receive:", "[S2] INC-1: Checkout returns 500s", "*Roles*: roles not assigned",
		"email would receive:", "Subject: [S2] INC-1 opened: Checkout returns 500s",
		"Subject: [Customer impact] INC-1 (major): Checkout returns 500s",
		"/incidents/INC-1|Open INC-1 in Responder>",
	}
	deadline := time.After(10 * time.Second)
	for {
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(logs.String(), w) })
		if len(missing) == 0 {
			break
		}
		select {
		case <-logs.written():
		case <-deadline:
			t.Fatalf("the log never showed %q:\n%s", missing, logs.String())
		}
	}
}
