//go:build unix

package main

// End-to-end test against a real Prometheus Alertmanager: the built responder
// binary and Debian's prometheus-alertmanager 0.25 run as separate processes
// on loopback, alerts are fired and resolved with amtool, and Responder's
// API is polled for the incidents that result.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	e2eAlertmanagerBin = "/usr/bin/prometheus-alertmanager"
	e2eAmtoolBin       = "/usr/bin/amtool"

	// e2eStartTimeout bounds how long either daemon may take to be ready.
	e2eStartTimeout = 10 * time.Second
	// e2eDeliverTimeout bounds how long an alert may take to travel from
	// amtool through Alertmanager (group_wait/group_interval 1s) into an
	// incident. It normally takes 1–3 s.
	e2eDeliverTimeout = 30 * time.Second
	// e2eBusyHold is how long writes stay refused in the overload scenario:
	// long enough for several of Alertmanager's attempts to be refused.
	e2eBusyHold = 3 * time.Second
	e2ePoll     = 100 * time.Millisecond
)

// TestE2EAlertmanager drives the built binary with a real Alertmanager. It
// builds responder once; each subtest starts its own Responder and
// Alertmanager so that subtests do not see each other's incidents.
func TestE2EAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a real Alertmanager: skipped with -short")
	}
	for _, bin := range []string{e2eAlertmanagerBin, e2eAmtoolBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not found (%v): install Debian's prometheus-alertmanager package (make test does) to run this test", bin, err)
		}
	}
	responder := e2eBuild(t)

	t.Run("FireAndResolve", func(t *testing.T) { e2eFireAndResolve(t, e2eStart(t, responder)) })
	t.Run("Overload", func(t *testing.T) { e2eOverload(t, e2eStart(t, responder)) })
}

// e2eFireAndResolve: three alerts in two Alertmanager groups become two
// incidents, classified by the default policy, and resolve when Alertmanager
// sends the resolved notifications.
func e2eFireAndResolve(t *testing.T, env *e2eEnv) {
	checkoutA := []string{"alertname=CheckoutDown", "severity=critical", "env=production", "instance=a"}
	checkoutB := []string{"alertname=CheckoutDown", "severity=critical", "env=production", "instance=b"}
	disk := []string{"alertname=DiskFull", "severity=warning", "instance=c"}
	env.amtoolAdd(t, checkoutA, "summary=Checkout is down")
	env.amtoolAdd(t, checkoutB, "summary=Checkout is down")
	env.amtoolAdd(t, disk, "summary=Disk is full")

	incs := env.waitIncidents(t, "two open incidents, CheckoutDown with 2 firing alerts and DiskFull with 1", func(incs []e2eIncident) bool {
		checkout, diskInc := e2eByAlertname(incs, "CheckoutDown"), e2eByAlertname(incs, "DiskFull")
		return len(incs) == 2 && checkout != nil && diskInc != nil &&
			checkout.AlertsFiring == 2 && diskInc.AlertsFiring == 1
	})
	checkout, diskInc := e2eByAlertname(incs, "CheckoutDown"), e2eByAlertname(incs, "DiskFull")
	e2eCheckIncident(t, checkout, e2eIncident{Severity: "S1", Status: "open", AlertsTotal: 2, AlertsFiring: 2})
	e2eCheckIncident(t, diskInc, e2eIncident{Severity: "S3", Status: "open", AlertsTotal: 1, AlertsFiring: 1})
	// One Alertmanager group is one incident: the dedup key is the groupKey.
	for _, inc := range []*e2eIncident{checkout, diskInc} {
		if want := `alertname="` + inc.Labels["alertname"] + `"`; !strings.Contains(inc.DedupKey, want) {
			t.Errorf("%s: dedup_key %q does not name its group (want it to contain %s)", inc.ID, inc.DedupKey, want)
		}
	}
	e2eCheckAlerts(t, env.incident(t, checkout.ID), "firing", "a", "b")
	e2eCheckAlerts(t, env.incident(t, diskInc.ID), "firing", "c")

	// Resolve: the same labels with an end time of now.
	end := "--end=" + time.Now().UTC().Format(time.RFC3339Nano)
	env.amtoolAdd(t, checkoutA, "summary=Checkout is down", end)
	env.amtoolAdd(t, checkoutB, "summary=Checkout is down", end)
	env.amtoolAdd(t, disk, "summary=Disk is full", end)

	incs = env.waitIncidents(t, "both incidents resolved with no firing alerts", func(incs []e2eIncident) bool {
		if len(incs) != 2 {
			return false
		}
		for _, inc := range incs {
			if inc.Status != "resolved" || inc.AlertsFiring != 0 {
				return false
			}
		}
		return true
	})
	checkout, diskInc = e2eByAlertname(incs, "CheckoutDown"), e2eByAlertname(incs, "DiskFull")
	e2eCheckIncident(t, checkout, e2eIncident{Severity: "S1", Status: "resolved", AlertsTotal: 2, AlertsFiring: 0})
	e2eCheckIncident(t, diskInc, e2eIncident{Severity: "S3", Status: "resolved", AlertsTotal: 1, AlertsFiring: 0})
	if checkout != nil {
		e2eCheckAlerts(t, env.incident(t, checkout.ID), "resolved", "a", "b")
	}
	if diskInc != nil {
		e2eCheckAlerts(t, env.incident(t, diskInc.ID), "resolved", "c")
	}
}

// e2eOverload: while Responder refuses writes with 503, nothing lands;
// Alertmanager retries, and once writes are accepted the group becomes one
// incident holding each alert exactly once.
func e2eOverload(t *testing.T, env *e2eEnv) {
	if err := os.WriteFile(env.busyFile, nil, 0o600); err != nil {
		t.Fatalf("create the busy failpoint file: %v", err)
	}
	firedAt := time.Now()
	env.amtoolAdd(t, []string{"alertname=QueueTest", "severity=warning", "instance=q1"}, "summary=Queue test")
	env.amtoolAdd(t, []string{"alertname=QueueTest", "severity=warning", "instance=q2"}, "summary=Queue test")

	// Hold the failpoint until Responder has refused at least one webhook
	// and e2eBusyHold has passed, checking all along that nothing landed.
	deadline := time.Now().Add(e2eDeliverTimeout)
	refused := 0
	for refused == 0 || time.Since(firedAt) < e2eBusyHold {
		if time.Now().After(deadline) {
			t.Fatalf("no 503 for POST /api/v1/alerts/alertmanager in responder's log within %s of firing: Alertmanager did not deliver, or the failpoint did not refuse it", e2eDeliverTimeout)
		}
		if incs := env.incidents(t); len(incs) != 0 {
			t.Fatalf("while writes were refused, incidents appeared: %+v", incs)
		}
		refused = env.countRequests(t, "/api/v1/alerts/alertmanager", http.StatusServiceUnavailable)
		time.Sleep(e2ePoll)
	}
	if accepted := env.countRequests(t, "/api/v1/alerts/alertmanager", http.StatusAccepted); accepted != 0 {
		t.Fatalf("while writes were refused, responder accepted %d webhooks", accepted)
	}
	t.Logf("responder refused %d webhooks with 503 while busy", refused)
	if err := os.Remove(env.busyFile); err != nil {
		t.Fatalf("remove the busy failpoint file: %v", err)
	}

	incs := env.waitIncidents(t, "the QueueTest incident with 2 alerts after writes resumed", func(incs []e2eIncident) bool {
		inc := e2eByAlertname(incs, "QueueTest")
		return inc != nil && inc.AlertsTotal >= 2
	})
	if len(incs) != 1 {
		t.Errorf("got %d incidents, want exactly 1 (QueueTest): %+v", len(incs), incs)
	}
	inc := e2eByAlertname(incs, "QueueTest")
	e2eCheckIncident(t, inc, e2eIncident{Severity: "S3", Status: "open", AlertsTotal: 2, AlertsFiring: 2})
	e2eCheckAlerts(t, env.incident(t, inc.ID), "firing", "q1", "q2")
}

// e2eIncident is the part of an incident the test reads.
type e2eIncident struct {
	ID           string            `json:"id"`
	Severity     string            `json:"severity"`
	Status       string            `json:"status"`
	DedupKey     string            `json:"dedup_key"`
	Labels       map[string]string `json:"labels"`
	AlertsTotal  int               `json:"alerts_total"`
	AlertsFiring int               `json:"alerts_firing"`
	Alerts       []struct {
		Fingerprint string            `json:"fingerprint"`
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
	} `json:"alerts"`
	Timeline []struct {
		Kind string `json:"kind"`
		Text string `json:"text"`
	} `json:"timeline"`
}

func (inc e2eIncident) String() string {
	return fmt.Sprintf("{%s %s %s %s total=%d firing=%d}", inc.ID, inc.Labels["alertname"], inc.Severity, inc.Status, inc.AlertsTotal, inc.AlertsFiring)
}

func e2eByAlertname(incs []e2eIncident, name string) *e2eIncident {
	for i := range incs {
		if incs[i].Labels["alertname"] == name {
			return &incs[i]
		}
	}
	return nil
}

func e2eCheckIncident(t *testing.T, got *e2eIncident, want e2eIncident) {
	t.Helper()
	if got == nil {
		t.Errorf("incident missing, want %+v", want)
		return
	}
	if got.Severity != want.Severity || got.Status != want.Status || got.AlertsTotal != want.AlertsTotal || got.AlertsFiring != want.AlertsFiring {
		t.Errorf("incident %s (%s): got severity=%s status=%s alerts_total=%d alerts_firing=%d, want severity=%s status=%s alerts_total=%d alerts_firing=%d",
			got.ID, got.Labels["alertname"], got.Severity, got.Status, got.AlertsTotal, got.AlertsFiring,
			want.Severity, want.Status, want.AlertsTotal, want.AlertsFiring)
	}
}

// e2eCheckAlerts checks that the incident holds exactly one alert per
// instance, each with its own fingerprint and the given status.
func e2eCheckAlerts(t *testing.T, inc *e2eIncident, status string, instances ...string) {
	t.Helper()
	var got []string
	fingerprints := map[string]int{}
	for _, a := range inc.Alerts {
		got = append(got, a.Labels["instance"])
		fingerprints[a.Fingerprint]++
		if a.Status != status {
			t.Errorf("incident %s: alert %s (instance %s) is %s, want %s", inc.ID, a.Fingerprint, a.Labels["instance"], a.Status, status)
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(instances, ",") {
		t.Errorf("incident %s: alerts for instances [%s], want exactly one each for [%s]", inc.ID, strings.Join(got, ","), strings.Join(instances, ","))
	}
	for fp, n := range fingerprints {
		if n != 1 {
			t.Errorf("incident %s: fingerprint %s stored %d times, want once", inc.ID, fp, n)
		}
	}
	if len(inc.Timeline) == 0 {
		t.Errorf("incident %s: empty timeline", inc.ID)
	}
}

// e2eBuild builds the responder binary once for all subtests.
func e2eBuild(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build responder: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "responder")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build responder: %v\n%s", err, out)
	}
	return bin
}

// e2eEnv is one Responder and one Alertmanager sending to it.
type e2eEnv struct {
	responderURL    string
	alertmanagerURL string
	token           string
	busyFile        string
	responderLog    string
	amtoolHome      string
	client          *http.Client
}

// e2eStart starts Responder and an Alertmanager whose only receiver is
// Responder, waits until both are ready and stops both when the test ends.
func e2eStart(t *testing.T, responderBin string) *e2eEnv {
	t.Helper()
	dir := t.TempDir()
	env := &e2eEnv{
		token:        "e2e-" + e2eRandomHex(t, 16),
		busyFile:     filepath.Join(dir, "busy"),
		responderLog: filepath.Join(dir, "responder.log"),
		amtoolHome:   filepath.Join(dir, "home"),
		client:       &http.Client{Timeout: 5 * time.Second},
	}
	rSock, rAddr := heldSocket(t)
	env.responderURL = "http://" + rAddr
	if err := os.Mkdir(env.amtoolHome, 0o700); err != nil {
		t.Fatal(err)
	}

	rCfg := filepath.Join(dir, "responder.yml")
	e2eWriteFile(t, rCfg, fmt.Sprintf(`listen: %s
data_dir: %s
log:
  level: info
  format: json
auth:
  tokens:
    - name: alertmanager-e2e
      token: %s
      scopes: [ingest, read]
`, rAddr, filepath.Join(dir, "data"), env.token))
	rp := e2eStartProcess(t, "responder", env.responderLog, []string{envBusyFile + "=" + env.busyFile}, rSock,
		responderBin, "serve", "--config", rCfg)
	e2eWaitReady(t, rp, env.client, env.responderURL+"/readyz")

	amCfg := filepath.Join(dir, "alertmanager.yml")
	e2eWriteFile(t, amCfg, fmt.Sprintf(`route:
  receiver: responder
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: responder
    webhook_configs:
      - url: %s/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: %s
`, env.responderURL, env.token))
	// Alertmanager cannot take a socket: it binds a port the kernel picks
	// and holds, and says which in its log.
	amLog := filepath.Join(dir, "alertmanager.log")
	ap := e2eStartProcess(t, "alertmanager", amLog, nil, nil, e2eAlertmanagerBin,
		"--config.file="+amCfg,
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address=127.0.0.1:0",
		"--cluster.listen-address=", // no gossip: nothing listens on 0.0.0.0:9094
	)
	env.alertmanagerURL = "http://" + e2eListeningOn(t, ap)
	e2eWaitReady(t, ap, env.client, env.alertmanagerURL+"/-/ready")
	return env
}

// e2eProcess is a daemon started in its own process group.
type e2eProcess struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
	out  *syncBuffer   // its output, for processes started by e2eStartProcess
	// killed: the test killed it (kill -9), so its exit is not a failure.
	killed atomic.Bool
}

// e2eStartProcess starts a daemon with its stdout and stderr in logPath,
// handed sock as its listening socket when sock is not nil (see activated).
// On cleanup it sends SIGTERM to the process group (SIGKILL after 10 s),
// waits, and logs the output if the test failed.
func e2eStartProcess(t *testing.T, name, logPath string, extraEnv []string, sock *os.File, bin string, args ...string) *e2eProcess {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	if sock != nil {
		cmd = activated(sock, nil, bin, args...)
	}
	cmd.Env = append(cmd.Environ(), extraEnv...)
	out := &syncBuffer{} // what it printed, with a signal on each write
	cmd.Stdout = io.MultiWriter(logFile, out)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cleanups run last-registered first: the log is shown after the stop.
	t.Cleanup(func() {
		_ = logFile.Close()
		if t.Failed() {
			e2eLogTail(t, name, logPath)
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &e2eProcess{name: name, cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop within 10s of SIGTERM: killing it", name)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Anything left in the group (there should be nothing) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if p.err != nil && !p.killed.Load() {
			// A graceful shutdown exits 0.
			t.Errorf("%s exited with %v after SIGTERM, want a clean exit", name, p.err)
		}
	})
	return p
}

func e2eLogTail(t *testing.T, name, path string) {
	t.Helper()
	const limit = 32 << 10
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s log: %v", name, err)
		return
	}
	if len(b) > limit {
		b = append([]byte("...\n"), b[len(b)-limit:]...)
	}
	t.Logf("%s output (%s):\n%s", name, path, b)
}

// e2eWaitReady polls url until it answers 200, failing early if the
// process exits.
func e2eWaitReady(t *testing.T, p *e2eProcess, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(e2eStartTimeout)
	var last string
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v", p.name, p.err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s; last answer: %s", p.name, url, e2eStartTimeout, last)
		}
		time.Sleep(e2ePoll)
	}
}

// amtoolAdd runs `amtool alert add` against this Alertmanager.
func (env *e2eEnv) amtoolAdd(t *testing.T, labels []string, annotation string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []string{"alert", "add", "--alertmanager.url=" + env.alertmanagerURL, "--annotation=" + annotation}
	args = append(args, extra...)
	args = append(args, labels...)
	cmd := exec.CommandContext(ctx, e2eAmtoolBin, args...)
	// A private HOME keeps a developer's ~/.config/amtool/config.yml out.
	cmd.Env = append(os.Environ(), "HOME="+env.amtoolHome)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("amtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// get fetches a Responder API path with the test's token into v.
func (env *e2eEnv) get(t *testing.T, path string, v any) {
	t.Helper()
	e2eGetJSON(t, env.client, env.responderURL, env.token, path, v)
}

// e2eGetJSON fetches a Responder API path with a bearer token and decodes
// the 200 answer into v; anything else fails the test.
func e2eGetJSON(t *testing.T, client *http.Client, baseURL, token, path string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, baseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
}

func (env *e2eEnv) incidents(t *testing.T) []e2eIncident {
	t.Helper()
	var out struct {
		Incidents []e2eIncident `json:"incidents"`
	}
	env.get(t, "/api/v1/incidents?limit=500", &out)
	return out.Incidents
}

func (env *e2eEnv) incident(t *testing.T, id string) *e2eIncident {
	t.Helper()
	var inc e2eIncident
	env.get(t, "/api/v1/incidents/"+id, &inc)
	return &inc
}

// waitIncidents polls the incident list until done accepts it.
func (env *e2eEnv) waitIncidents(t *testing.T, what string, done func([]e2eIncident) bool) []e2eIncident {
	t.Helper()
	deadline := time.Now().Add(e2eDeliverTimeout)
	for {
		incs := env.incidents(t)
		if done(incs) {
			return incs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last incidents: %v", e2eDeliverTimeout, what, incs)
		}
		time.Sleep(e2ePoll)
	}
}

// countRequests counts the request lines of Responder's JSON log for path
// answered with status.
func (env *e2eEnv) countRequests(t *testing.T, path string, status int) int {
	t.Helper()
	f, err := os.Open(env.responderLog)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Path    string `json:"path"`
			Status  int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // a line being written, or not JSON
		}
		if line.Message == "request" && line.Path == path && line.Status == status {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read responder log: %v", err)
	}
	return n
}

// e2eListeningOn waits (bounded) for Alertmanager's output to say which
// address it listens on: woken by each write, never polling.
func e2eListeningOn(t *testing.T, p *e2eProcess) string {
	t.Helper()
	const marker = `msg="Listening on" address=`
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for {
		if _, rest, ok := strings.Cut(p.out.String(), marker); ok {
			if addr, _, ok := strings.Cut(rest, "\n"); ok {
				return strings.TrimSpace(addr)
			}
		}
		select {
		case <-p.out.written():
		case <-p.done:
			t.Fatalf("%s exited before listening: %v", p.name, p.err)
		case <-timeout.C:
			t.Fatalf("%s did not say where it listens within 15s", p.name)
		}
	}
}

func e2eWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func e2eRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
