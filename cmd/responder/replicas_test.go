package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

// replicaLease is the delivery lease of the replica tests: short, so that
// a take-over happens within seconds.
const replicaLease = 3 * time.Second

// The replica test drains replicaNotifications announcements over
// replicaTeams Slack channels.
const (
	replicaNotifications = 1000
	replicaTeams         = 20
)

// replicaCluster is three Responder processes (the real binary) on one
// PostgreSQL database, posting to one fake Slack.
type replicaCluster struct {
	dsn     string
	slack   *slacktest.Server
	procs   []*e2eProcess
	urls    []string
	client  *http.Client
	stopped map[int]bool // SIGSTOPped
}

// Three replicas on one database: the same webhook sent to all three at
// once opens one incident; every notification is posted exactly once; when
// the replica delivering is killed (kill -9) another takes over and posts
// what was left, once; and a replica paused (SIGSTOP) past its lease sends
// nothing after another took over, when it wakes.
func TestReplicas(t *testing.T) {
	bin := e2eBuild(t)
	pg := testPostgres(t)
	c := &replicaCluster{dsn: pg.NewDatabase(t), client: &http.Client{Timeout: 10 * time.Second}, stopped: map[int]bool{}}
	c.slack = slacktest.New("xoxb-replicas-example")
	t.Cleanup(c.slack.Close)
	c.slack.AddChannel("incidents")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "responder.yml")
	// Twenty teams, each with its own channel (Slack allows about one post
	// a second per channel: twenty channels drain a thousand posts fast).
	var rules, channels strings.Builder
	for i := range replicaTeams {
		fmt.Fprintf(&rules, "    - name: team-%d\n      matchers: ['team=\"t%d\"']\n      severity: S3\n      team: t%d\n", i, i, i)
		fmt.Fprintf(&channels, "      t%d: \"#t%d\"\n", i, i)
		c.slack.AddChannel(fmt.Sprintf("t%d", i))
	}
	e2eWriteFile(t, cfg, fmt.Sprintf(`log:
  format: json
store:
  postgres:
    dsn: %q
    lease_ttl: %s
policy:
  rules:
%snotifications:
  log: false
  retry_base: 100ms
  retry_max: 1s
  slack:
    token: xoxb-replicas-example
    api_url: %s
    channel: "#incidents"
    team_channels:
%s    rate_per_second: 10
    burst: 10
`, c.dsn, replicaLease, rules.String(), c.slack.URL(), channels.String()))
	for i := range 3 {
		sock, addr := heldSocket(t)
		p := e2eStartProcess(t, fmt.Sprintf("replica-%d", i), filepath.Join(dir, fmt.Sprintf("replica-%d.log", i)), nil, sock, bin,
			"serve", "--config", cfg, "--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", i)))
		c.procs = append(c.procs, p)
		c.urls = append(c.urls, "http://"+addr)
		e2eWaitReady(t, p, c.client, c.urls[i]+"/readyz")
	}
	t.Cleanup(func() {
		for i := range c.stopped {
			_ = syscall.Kill(c.procs[i].cmd.Process.Pid, syscall.SIGCONT)
		}
	})

	// The same group at the same moment on all three: one incident each.
	const groups = 8
	var wg sync.WaitGroup
	for g := range groups {
		for r := range c.procs {
			wg.Go(func() {
				body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"Replica%d\"}","status":"firing","receiver":"responder",
					"groupLabels":{"alertname":"Replica%d"},"commonLabels":{"alertname":"Replica%d","severity":"critical"},"commonAnnotations":{},
					"externalURL":"http://am.example","alerts":[{"status":"firing","labels":{"alertname":"Replica%d","severity":"critical"},
					"annotations":{},"startsAt":"2026-12-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp%d"}]}`, g, g, g, g, g)
				body = strings.ReplaceAll(body, `"severity":"critical"}`, `"severity":"critical","team":"t0"}`)
				resp, err := c.client.Post(c.urls[r]+"/api/v1/alerts/alertmanager", "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("webhook to replica %d: %v", r, err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("webhook to replica %d: %d", r, resp.StatusCode)
				}
			})
		}
	}
	wg.Wait()
	if n := c.countIncidents(t); n != groups {
		t.Fatalf("%d incidents for %d groups sent to three replicas at once", n, groups)
	}
	c.waitPosted(t, groups, 30*time.Second)

	// A thousand alerts groups, each sent to one replica: a thousand
	// announcements, each posted once, although the replica delivering is
	// killed (kill -9) while they drain and another takes over.
	holder := c.leaseHolder(t)
	t0 := time.Now()
	c.sendGroups(t, holder, groups, replicaNotifications)
	t.Logf("sent %d groups in %s", replicaNotifications, time.Since(t0))
	c.waitPosted(t, groups+replicaNotifications/5, 60*time.Second)
	t.Logf("a fifth posted in %s", time.Since(t0))
	c.procs[holder].killed.Store(true)
	if err := syscall.Kill(-c.procs[holder].cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.procs[holder].done
	c.waitPosted(t, groups+replicaNotifications, 4*replicaLease+120*time.Second)
	t.Logf("posted all in %s", time.Since(t0))
	next := c.leaseHolder(t)
	if next == holder {
		t.Fatalf("the lease is still held by the killed replica %d", holder)
	}
	total := groups + replicaNotifications
	// The replica delivering is paused past its lease: another takes over
	// and posts what is queued; the paused one, woken, sends nothing.
	if err := syscall.Kill(c.procs[next].cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.stopped[next] = true
	c.declare(t, -1, 10) // to the replicas that answer
	c.waitPosted(t, total+10, 4*replicaLease+20*time.Second)
	if err := syscall.Kill(c.procs[next].cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	delete(c.stopped, next)
	c.declare(t, -1, 5)
	c.waitPosted(t, total+15, 4*replicaLease+20*time.Second)
	// Time for a late duplicate to show: two leases.
	// (A wait for something that must not happen cannot end on a signal.)
	time.Sleep(2 * replicaLease)
	c.checkOnce(t, total+15)
}

// alive are the replicas that answer (neither killed nor paused), but skip.
func (c *replicaCluster) alive(skip int) []int {
	var out []int
	for i, p := range c.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		if i != skip && !c.stopped[i] {
			out = append(out, i)
		}
	}
	return out
}

// sendGroups sends n Alertmanager groups (numbered from first), each to one
// of the replicas that answer, spread over the teams.
func (c *replicaCluster) sendGroups(t *testing.T, skip, first, n int) {
	t.Helper()
	alive := c.alive(skip)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for g := range work {
				r := alive[g%len(alive)]
				body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"Load%d\"}","status":"firing","receiver":"responder",
					"groupLabels":{"alertname":"Load%d"},"commonLabels":{"alertname":"Load%d","team":"t%d"},"commonAnnotations":{},
					"externalURL":"http://am.example","alerts":[{"status":"firing","labels":{"alertname":"Load%d","team":"t%d"},"annotations":{},
					"startsAt":"2026-12-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"load%d"}]}`, g, g, g, g%replicaTeams, g, g%replicaTeams, g)
				resp, err := c.client.Post(c.urls[r]+"/api/v1/alerts/alertmanager", "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("webhook to replica %d: %v", r, err)
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("webhook to replica %d: %d", r, resp.StatusCode)
				}
			}
		})
	}
	for g := first; g < first+n; g++ {
		work <- g
	}
	close(work)
	wg.Wait()
}

// declare declares n incidents, spread over the replicas that answer.
func (c *replicaCluster) declare(t *testing.T, skip, n int) {
	t.Helper()
	alive := c.alive(skip)
	for i := range n {
		r := alive[i%len(alive)]
		resp, err := c.client.Post(c.urls[r]+"/api/v1/incidents", "application/json",
			strings.NewReader(fmt.Sprintf(`{"title":"declared %d on replica %d","severity":"S2","declared_by":"test"}`, i, r)))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("declare on replica %d: %d", r, resp.StatusCode)
		}
	}
}

func (c *replicaCluster) countIncidents(t *testing.T) int {
	t.Helper()
	r := c.alive(-1)[0]
	var list struct{ Incidents []json.RawMessage }
	e2eGetJSON(t, c.client, c.urls[r], "", "/api/v1/incidents?limit=500", &list)
	return len(list.Incidents)
}

// roots are the Slack roots posted, by delivery key.
func (c *replicaCluster) roots() map[string]int {
	out := map[string]int{}
	for _, p := range c.slack.Posts() {
		if p.Method == slacktest.MethodPostMessage && p.ThreadTS == "" && p.Metadata != nil {
			key, _ := p.Metadata.EventPayload["key"].(string)
			out[key]++
		}
	}
	return out
}

// waitPosted waits until n distinct roots are posted.
func (c *replicaCluster) waitPosted(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for len(c.roots()) < n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d of %d announcements posted within %s", len(c.roots()), n, limit)
		}
	}
}

// checkOnce: every announcement posted exactly once, no more than n.
func (c *replicaCluster) checkOnce(t *testing.T, n int) {
	t.Helper()
	roots := c.roots()
	if len(roots) != n {
		t.Errorf("%d announcements, want %d", len(roots), n)
	}
	for key, count := range roots {
		if count != 1 {
			t.Errorf("announcement %s posted %d times", key, count)
		}
	}
}

// leaseHolder is the replica holding the delivery lease now, by its pid.
func (c *replicaCluster) leaseHolder(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var holder string
	if err := conn.QueryRow(ctx, `SELECT holder FROM leases WHERE name = 'outbox'`).Scan(&holder); err != nil {
		t.Fatalf("read the delivery lease: %v", err)
	}
	for i, p := range c.procs {
		if strings.HasSuffix(holder, fmt.Sprintf("/%d", p.cmd.Process.Pid)) {
			return i
		}
	}
	t.Fatalf("the lease holder %q is none of the replicas (pids %v)", holder, c.pids())
	return -1
}

func (c *replicaCluster) pids() []int {
	var out []int
	for _, p := range c.procs {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}
