package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

// A backup taken under ingest load, restored into a new data directory and
// served from there, has every incident answered before the backup began;
// the deliveries it had pending resume; and those the first daemon made
// after the copy are found at Slack, not posted twice.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	const (
		bot         = "xoxb-FAKE-backup-test"
		ingestToken = "FAKE-backup-test-ingest-token"
		adminTok    = "FAKE-backup-test-admin-token"
	)
	fake := slacktest.New(bot)
	t.Cleanup(fake.Close)
	fake.AddChannel("incidents")
	fake.FailNext(1<<30, http.StatusInternalServerError) // Slack is down: every announcement stays owed

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	listen := closedPort(t)
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
auth:
  tokens:
    - {name: alertmanager, token: %s, scopes: [ingest, read]}
    - {name: backup, token: %s, scopes: [admin, ingest]}
heartbeats:
  - {name: backups, interval: 24h, grace: 2h}
notifications:
  log: false
  retry_base: 20ms
  retry_max: 100ms
  slack:
    token: %s
    api_url: %s
    channel: "#incidents"
    rate_per_second: 5
    burst: 1
`, listen, data, ingestToken, adminTok, bot, fake.URL())
	cfgPath := filepath.Join(dir, "config.yml")
	e2eWriteFile(t, cfgPath, cfg)
	tokenFile := filepath.Join(dir, "backup.token")
	e2eWriteFile(t, tokenFile, adminTok+"\n")

	d1 := runDaemon(t, nil, "http", "--config", cfgPath)
	base := d1.base
	client := &http.Client{Timeout: 10 * time.Second}

	// Four posters, each opening new incidents until told to stop; every
	// incident answered 202 is recorded with the moment it was answered.
	var mu sync.Mutex
	var answered []string
	forty := make(chan struct{}) // closed at the 40th incident answered
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	post := func(poster, n int) error {
		group := fmt.Sprintf("Backup%dx%d", poster, n)
		body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"%s\"}","status":"firing","receiver":"r","groupLabels":{},"commonLabels":{},
			"commonAnnotations":{},"externalURL":"http://am.example","alerts":[{"status":"firing","labels":{"alertname":"%s","severity":"critical"},
			"annotations":{},"startsAt":"2026-12-08T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp-%s"}]}`, group, group, group)
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/alerts/alertmanager", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return nil // shed under load: Alertmanager would send it again
		}
		var got struct {
			Incidents []struct{ ID string } `json:"incidents"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusAccepted || len(got.Incidents) != 1 {
			return fmt.Errorf("ingest: %d %+v: %w", resp.StatusCode, got, err)
		}
		mu.Lock()
		answered = append(answered, got.Incidents[0].ID)
		if len(answered) == 40 {
			close(forty)
		}
		mu.Unlock()
		return nil
	}
	loadErr := make(chan error, 4)
	for p := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for n := 0; n < 10000; n++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				if err := post(p, n); err != nil {
					loadErr <- err
					return
				}
			}
		}()
	}
	select {
	case <-forty:
	case err := <-loadErr:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("40 incidents not answered within 30s")
	}

	// Two backups while the load goes on: through the config (the daemon
	// holds the file, so the command asks it, with the config's admin
	// token), and through --url with a token file.
	mu.Lock()
	before := append([]string(nil), answered...)
	mu.Unlock()
	viaConfig := filepath.Join(dir, "backups", "via-config.db")
	if err := os.MkdirAll(filepath.Dir(viaConfig), 0o700); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "backup", "--config", cfgPath, "--to", viaConfig, "--heartbeat", "backups")
	if code != 0 || !strings.Contains(out, "through the daemon at http://"+listen) || !strings.Contains(out, "pinged heartbeat backups") {
		t.Fatalf("backup --config: exit %d\n%s%s", code, out, errOut)
	}
	if body := getBody(t, client, base+"/metrics"); !regexp.MustCompile(`responder_heartbeat_last_ping_timestamp_seconds\{heartbeat="backups"\} [1-9]`).MatchString(body) {
		t.Errorf("the backup did not ping its heartbeat:\n%s", body)
	}
	// A heartbeat the daemon does not know: the copy is kept, the command fails saying why.
	if code, out, errOut := runCLI(t, "backup", "--config", cfgPath, "--to", viaConfig+".2", "--heartbeat", "nightly"); code == 0 ||
		!strings.Contains(errOut, "the copy is good, but ping heartbeat nightly: 404") {
		t.Errorf("backup with an unknown heartbeat: exit %d\n%s%s", code, out, errOut)
	}
	viaURL := filepath.Join(dir, "backups", "via-url.db")
	if code, out, errOut := runCLI(t, "backup", "--url", base, "--token-file", tokenFile, "--to", viaURL); code != 0 {
		t.Fatalf("backup --url: exit %d\n%s%s", code, out, errOut)
	}
	// The database itself is never a backup's target.
	if code, _, errOut := runCLI(t, "backup", "--config", cfgPath, "--to", filepath.Join(data, "responder.db")); code == 0 ||
		!strings.Contains(errOut, "is the database itself") {
		t.Errorf("backup onto the database: exit %d: %s", code, errOut)
	}
	// A token without the admin scope is refused, and says so.
	e2eWriteFile(t, filepath.Join(dir, "ingest.token"), ingestToken)
	if code, _, errOut := runCLI(t, "backup", "--url", base, "--token-file", filepath.Join(dir, "ingest.token"), "--to", filepath.Join(dir, "x.db")); code == 0 ||
		!strings.Contains(errOut, `lacks the \"admin\" scope`) && !strings.Contains(errOut, `lacks the "admin" scope`) {
		t.Errorf("backup with an ingest token: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); !os.IsNotExist(err) {
		t.Errorf("a refused backup left a file (%v)", err)
	}
	close(stopLoad)
	load.Wait()
	select {
	case err := <-loadErr:
		t.Fatal(err)
	default:
	}

	// Restoring over the data directory the daemon holds is refused.
	if code, _, errOut := runCLI(t, "restore", "--from", viaConfig, "--data-dir", data); code == 0 || !strings.Contains(errOut, "held by another process") {
		t.Errorf("restore over a held directory: exit %d: %s", code, errOut)
	}

	// Slack comes back: the first daemon delivers a few of the announcements
	// the backup has pending, and stops before the rest.
	fake.FailNext(0, 0)
	if err := fake.WaitFor(30*time.Second, "three announcements", func() bool { return len(fake.Messages("incidents")) >= 3 }); err != nil {
		t.Fatal(err)
	}
	d1.stop()
	postedBefore := len(fake.Messages("incidents"))
	if strings.Contains(d1.logs.String(), adminTok) {
		t.Errorf("the admin token is in the log")
	}

	restored := filepath.Join(dir, "restored")
	code, out, errOut = runCLI(t, "restore", "--from", viaConfig, "--data-dir", restored)
	if code != 0 || !strings.Contains(out, "marked in doubt") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	d2 := runDaemon(t, nil, "http", "--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", restored)
	base2 := d2.base
	for _, id := range before {
		req, _ := http.NewRequest(http.MethodGet, base2+"/api/v1/incidents/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s, answered before the backup began: %d after the restore", id, resp.StatusCode)
		}
	}

	// Every incident of the restored file is announced once: those the
	// first daemon posted after the copy are found, the rest resume.
	var restoredIDs []string
	{
		req, _ := http.NewRequest(http.MethodGet, base2+"/api/v1/incidents?limit=500", nil)
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Incidents []struct{ ID string } `json:"incidents"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %v", resp.StatusCode, err)
		}
		for _, inc := range list.Incidents {
			restoredIDs = append(restoredIDs, inc.ID)
		}
	}
	if len(restoredIDs) < len(before) || postedBefore >= len(restoredIDs) {
		t.Fatalf("restored %d incidents, %d answered before the backup, %d announced before the restore: nothing left to resume",
			len(restoredIDs), len(before), postedBefore)
	}
	idIn := regexp.MustCompile(`INC-\d+\b`)
	roots := func() map[string]int {
		n := map[string]int{}
		for _, m := range fake.Messages("incidents") {
			n[idIn.FindString(m.Text)]++
		}
		return n
	}
	err := fake.WaitFor(60*time.Second, "every restored incident announced", func() bool {
		r := roots()
		for _, id := range restoredIDs {
			if r[id] == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range roots() {
		if n != 1 {
			t.Errorf("%s announced %d times, want once", id, n)
		}
	}
	if !strings.Contains(d2.logs.String(), `"found_at_vendor":true`) {
		t.Errorf("no delivery was found at Slack after the restore; the daemon's log:\n%s", tail(d2.logs.String(), 4000))
	}
	if bytes.Contains([]byte(d2.logs.String()), []byte(adminTok)) {
		t.Errorf("the admin token is in the log")
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
