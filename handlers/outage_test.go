package handlers

// Vendor outages: each vendor down for a long stretch of virtual time, in
// each way a vendor fails, with the daemon restarted in the middle. The
// virtual clock (simClock) stands still while the dispatcher works and is
// moved by the test from one due time to the next, so half an hour of
// outage costs a few seconds of wall time and every gap between two
// attempts is measured in virtual time, whatever the load on the machine.
// Attempts are recorded where the dispatcher calls a vendor's notifier
// (watched): a refused connection never reaches a fake.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/outbox"
	"github.com/responder-sre/responder/store"
)

// simClock is an outage test's time: it stands still until the test moves
// it, or, once it runs on, follows real time from where it stood.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	runsOn time.Time // the real time it started to run on; zero while it stands
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runsOn.IsZero() {
		return c.now
	}
	return c.now.Add(time.Since(c.runsOn))
}

// set moves a standing clock forward to t.
func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// runOn makes the clock follow real time from now on.
func (c *simClock) runOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runsOn = time.Now()
}

// via is the address the notifiers of vendor dial instead of addr, its
// fake's (see vendors.front).
func (v *vendors) via(vendor, addr string) string {
	if v.front == nil {
		return addr
	}
	return v.front(vendor, addr)
}

func (v *vendors) viaURL(t *testing.T, vendor, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = v.via(vendor, u.Host)
	return u.String()
}

func (v *vendors) viaHostPort(t *testing.T, vendor, host string, port int) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(v.via(vendor, net.JoinHostPort(host, strconv.Itoa(port))))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// proxyMode is how a faultProxy treats connections.
type proxyMode int

const (
	proxyUp     proxyMode = iota // pass bytes both ways to the vendor's fake
	proxyRefuse                  // no listener: "connection refused"
	proxyHang                    // accept, read, never answer
)

// faultProxy stands on a fixed loopback address in front of a vendor's fake
// and fails the way networks do. Changing its mode drops the connections
// it holds, as a vendor's front end going down or coming back does.
type faultProxy struct {
	addr    string
	backend string
	wg      sync.WaitGroup

	mu     sync.Mutex
	mode   proxyMode
	ln     net.Listener
	conns  map[net.Conn]bool
	closed bool
}

func newFaultProxy(t *testing.T, backend string) *faultProxy {
	t.Helper()
	p := &faultProxy{backend: backend, conns: map[net.Conn]bool{}}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

// serve accepts on ln until it is closed; p.mu is held or p is new.
func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.handle(c)
		}
	}()
}

func (p *faultProxy) handle(c net.Conn) {
	p.mu.Lock()
	if p.closed || p.mode == proxyRefuse {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	mode := p.mode
	p.conns[c] = true
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer p.drop(c)
		if mode == proxyHang {
			_, _ = io.Copy(io.Discard, c) // until the client gives up
			return
		}
		var d net.Dialer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := d.DialContext(ctx, "tcp", p.backend)
		cancel()
		if err != nil {
			return
		}
		if !p.track(b) {
			return
		}
		defer p.drop(b)
		done := make(chan struct{}, 2)
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite() // pass the end of one direction on
			}
			done <- struct{}{}
		}
		go pipe(b, c)
		go pipe(c, b)
		<-done
		<-done
	}()
}

// track holds c so that a change of mode can drop it; false when the
// proxy has changed or closed meanwhile (c is then closed).
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode != proxyUp {
		_ = c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *faultProxy) drop(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	_ = c.Close()
}

// set changes the mode. Leaving proxyRefuse listens again on the same
// address.
func (p *faultProxy) set(m proxyMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode || p.closed {
		return nil
	}
	old := p.mode
	p.mode = m
	for c := range p.conns {
		_ = c.Close()
	}
	switch {
	case m == proxyRefuse:
		_ = p.ln.Close()
		p.ln = nil
	case old == proxyRefuse:
		var lc net.ListenConfig
		var ln net.Listener
		var err error
		for try := 0; try < 50; try++ { // the port is ours unless another test took it meanwhile
			if ln, err = lc.Listen(context.Background(), "tcp", p.addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("proxy: listen again on %s: %w", p.addr, err)
		}
		p.serve(ln)
	}
	return nil
}

// reachable reports whether a request now reaches the vendor's fake.
func (p *faultProxy) reachable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode == proxyUp
}

func (p *faultProxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// attempt is one call of a vendor's notifier by the dispatcher.
type attempt struct {
	channel, key, event string
	at                  time.Time // virtual; the clock stands still during the call
	err                 error
	retryAfter          time.Duration
	// ambiguous: it timed out while the vendor was reachable, so the
	// vendor may have taken it: a repeat is then allowed (at least once).
	ambiguous bool
}

// attemptLog records every attempt, across restarts of the daemon.
type attemptLog struct {
	mu       sync.Mutex
	list     []attempt
	inFlight int
}

func (l *attemptLog) all() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// watched is a vendor's notifier as the dispatcher sees it, with every
// call recorded.
type watched struct {
	integrations.Notifier
	log       *attemptLog
	now       func() time.Time
	reachable func() bool
}

func (w watched) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	w.log.mu.Lock()
	w.log.inFlight++
	w.log.mu.Unlock()
	a := attempt{channel: w.Name(), key: m.Key, event: m.Event, at: w.now()}
	reachable := w.reachable()
	r, err := w.Notifier.Notify(ctx, m)
	a.err = err
	_, a.retryAfter = integrations.Retryable(err)
	a.ambiguous = reachable && errors.Is(err, context.DeadlineExceeded)
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	w.log.inFlight--
	w.log.list = append(w.log.list, a)
	return r, err
}

// outageRun is a daemon and the four fake vendors, one of them behind a
// fault proxy when the test needs one, on a virtual clock: the test takes
// vendors down, restarts the daemon and moves time on.
type outageRun struct {
	t     *testing.T
	clk   *simClock
	v     *vendors
	proxy map[string]*faultProxy
	log   *attemptLog
	cfg   outbox.Config
	opts  []envOption
	e     *testEnv
	ids   []string
	// cancelled counts the pages cancelled because their incident
	// resolved during the pager's outage (checkDelivered).
	cancelled int
}

// outageConfig is the dispatcher of the outage tests: real backoff and
// rate settings, scaled for a half-hour outage.
func outageConfig() outbox.Config {
	return outbox.Config{
		MaxAge:         24 * time.Hour,
		BackoffBase:    10 * time.Second,
		BackoffMax:     5 * time.Minute,
		Timeout:        30 * time.Second,
		SlackRate:      1,
		SlackBurst:     1,
		DependencyWait: 15 * time.Second,
	}
}

// newOutageRun builds the fakes and the notifiers of a run, with a fault
// proxy in front of the vendor proxied, if any. Build every run before any
// of them sends: the OpsGenie SDK writes a package variable that every
// request reads when a notifier is built.
func newOutageRun(t *testing.T, cfg outbox.Config, inHours bool, proxied string) *outageRun {
	t.Helper()
	r := &outageRun{
		t:     t,
		clk:   &simClock{now: time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)},
		v:     &vendors{},
		proxy: map[string]*faultProxy{},
		log:   &attemptLog{},
		cfg:   cfg,
	}
	r.v.front = func(vendor, addr string) string {
		if vendor != proxied {
			return addr
		}
		p := r.proxy[vendor]
		if p == nil {
			p = newFaultProxy(t, addr)
			r.proxy[vendor] = p
		}
		return p.addr
	}
	r.opts = []envOption{withVendors(t, r.v, inHours), r.setup}
	return r
}

// start starts the run's daemon, for the test t.
func (r *outageRun) start(t *testing.T) {
	t.Helper()
	r.t = t
	r.e = newEnv(t, r.opts...)
}

// setup puts the env on the virtual clock and watches the vendors.
func (r *outageRun) setup(s envSetup) {
	*s.dispatch = r.cfg
	s.deps.Now = r.clk.Now
	*s.dispatchClock = r.clk.Now
	for i, n := range *s.notifiers {
		if !slices.Contains(outageVendors(), n.Name()) {
			continue
		}
		reachable := func() bool { return true }
		if p := r.proxy[n.Name()]; p != nil {
			reachable = p.reachable
		}
		(*s.notifiers)[i] = watched{Notifier: n, log: r.log, now: r.clk.Now, reachable: reachable}
	}
}

// restart stops the daemon's dispatcher and store and opens them again
// on the same file, as a restarted daemon does.
func (r *outageRun) restart() {
	r.t.Helper()
	r.e = reopenEnv(r.t, r.e, r.opts...)
}

// fire posts the firing alerts of sample as a group of their own and
// returns its incident (am_firing_v034.json: an S1, am_firing_old.json: an
// S3).
func (r *outageRun) fire(group, sample string) string {
	r.t.Helper()
	res := r.e.postAM(amPayload(r.t, sample, func(m *incident.AlertmanagerWebhook) {
		m.GroupKey = `{}:{group="` + group + `"}`
		for i := range m.Alerts {
			m.Alerts[i].Fingerprint = fmt.Sprintf("%s-%d", group, i)
		}
	}))
	if len(res) != 1 || !res[0].Created {
		r.t.Fatalf("group %s: %+v, want one new incident", group, res)
	}
	r.ids = append(r.ids, res[0].ID)
	return res[0].ID
}

// resolve posts the group's alerts resolved: the incident resolves.
func (r *outageRun) resolve(group string) {
	r.t.Helper()
	r.e.postAM(amPayload(r.t, "am_resolved_v034.json", func(m *incident.AlertmanagerWebhook) {
		m.GroupKey = `{}:{group="` + group + `"}`
		for i := range m.Alerts {
			m.Alerts[i].Fingerprint = fmt.Sprintf("%s-%d", group, i)
		}
	}))
}

func (r *outageRun) ack(id string) {
	r.t.Helper()
	if res := r.e.do(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, []byte(`{"by":"maria"}`)); res.status != http.StatusOK {
		r.t.Fatalf("ack %s: %d %s", id, res.status, res.body)
	}
}

// intents reads every intent of the run's incidents.
func (r *outageRun) intents() []store.Intent {
	r.t.Helper()
	var all []store.Intent
	err := r.e.db.View(context.Background(), func(tx store.Tx) error {
		for _, id := range r.ids {
			ins, err := tx.IncidentIntents(id)
			if err != nil {
				return err
			}
			all = append(all, ins...)
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("read outbox: %v", err)
	}
	return all
}

// settle lets the dispatcher do everything due at the current virtual
// time: no call in flight, the outcome of every call written to the outbox,
// and the outbox unchanged over a few kicks.
func (r *outageRun) settle() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for stable := 0; stable < 3; {
		if time.Now().After(deadline) {
			r.t.Fatalf("the dispatcher did not settle at %s", r.clk.Now().Format(time.TimeOnly))
		}
		r.e.kick()
		time.Sleep(2 * time.Millisecond)
		calls := map[string]int{}
		r.log.mu.Lock()
		inFlight := r.log.inFlight
		for _, a := range r.log.list {
			calls[a.key]++
		}
		r.log.mu.Unlock()
		if inFlight > 0 {
			stable = 0
			continue
		}
		pending := r.pending()
		var b strings.Builder
		unsaved := false
		for _, in := range pending {
			fmt.Fprintf(&b, "%d:%s:%d:%d,", in.Seq, in.State, in.Attempts, in.NextAt.UnixNano())
			// An intent called more often than its attempts say has an
			// outcome still to be written (a finished one has left).
			unsaved = unsaved || (in.Channel != integrations.ChannelLog && in.Attempts < calls[in.Key])
		}
		if unsaved || b.String() != last {
			stable, last = 0, b.String()
			continue
		}
		stable++
	}
}

// pending reads the pending intents.
func (r *outageRun) pending() []store.Intent {
	r.t.Helper()
	var pending []store.Intent
	err := r.e.db.View(context.Background(), func(tx store.Tx) error {
		var err error
		pending, err = tx.PendingIntents(0, 0)
		return err
	})
	if err != nil {
		r.t.Fatalf("read outbox: %v", err)
	}
	return pending
}

// next is the next virtual time anything can fall due, at most limit: an
// intent's next attempt, the end of its wait for a bridge, its max_age.
// An intent due now but not started is held by what the outbox does not
// show: a Retry-After on its target (time moves to its end) or the Slack
// rate (time moves a second).
func (r *outageRun) next(limit time.Time) time.Time {
	now := r.clk.Now()
	pending := r.pending()
	if len(pending) == 0 {
		return limit
	}
	all := r.intents()
	next := earliest(limit, now.Add(time.Minute))
	isPending := map[uint64]bool{}
	for _, in := range pending {
		isPending[in.Seq] = true
	}
	// Where the vendors asked to wait (Retry-After), and until when.
	target := map[string]string{}
	for _, in := range all {
		target[in.Key] = in.Channel + "\x00" + in.Target
	}
	held := map[string]time.Time{}
	for _, a := range r.log.all() {
		if until := a.at.Add(a.retryAfter); a.retryAfter > 0 && until.After(held[target[a.key]]) {
			held[target[a.key]] = until
		}
	}
	heads := map[string]bool{}
	for _, in := range pending { // in sequence order
		for _, t := range []time.Time{in.NextAt, in.CreatedAt.Add(r.cfg.MaxAge + time.Nanosecond)} {
			if t.After(now) {
				next = earliest(next, t)
			}
		}
		waiting := in.After != 0 && isPending[in.After] && now.Before(in.CreatedAt.Add(r.cfg.DependencyWait))
		if waiting {
			next = earliest(next, in.CreatedAt.Add(r.cfg.DependencyWait))
		}
		lane := in.IncidentID + "\x00" + in.Channel + "\x00" + in.Target
		if heads[lane] {
			continue // behind its lane's head
		}
		heads[lane] = true
		if !waiting && !in.NextAt.After(now) {
			if until := held[in.Channel+"\x00"+in.Target]; until.After(now) {
				next = earliest(next, until)
			} else {
				next = earliest(next, now.Add(time.Second))
			}
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// until moves virtual time to t, letting the dispatcher do all that falls
// due on the way.
func (r *outageRun) until(t time.Time) {
	r.t.Helper()
	for step := 0; ; step++ {
		r.settle()
		if !r.clk.Now().Before(t) {
			return
		}
		if step > 20000 {
			r.t.Fatalf("stuck before %s", t)
		}
		r.clk.set(r.next(t))
	}
}

// drain moves virtual time on until nothing is pending, within the given
// virtual time, and returns when the outbox became empty.
func (r *outageRun) drain(within time.Duration) time.Time {
	r.t.Helper()
	limit := r.clk.Now().Add(within)
	for {
		r.settle()
		pending := r.pending()
		now := r.clk.Now()
		if len(pending) == 0 {
			return now
		}
		if !now.Before(limit) {
			r.t.Fatalf("%d intents still pending after %s of virtual time, first %+v", len(pending), within, pending[0])
		}
		r.clk.set(r.next(limit))
	}
}

// Failure modes of a vendor.
const (
	modeUnavailable = "unavailable" // HTTP 503; SMTP 451 at MAIL FROM
	modeRefused     = "refused"     // nothing listens: connection refused
	modeRateLimited = "429"         // 429 with Retry-After on every request
	modeTimeout     = "timeout"     // the connection is accepted and never answered
)

// outageRetryAfter is the Retry-After of the rate-limited modes: longer
// than BackoffMax, to show that it is honoured as given.
const outageRetryAfter = 7 * time.Minute

// failure returns what takes vendor down in mode and what brings it back.
func (r *outageRun) failure(vendor, mode string) (down, up func()) {
	r.t.Helper()
	v, p := r.v, r.proxy[vendor]
	switch mode {
	case modeRefused, modeTimeout:
		m := proxyRefuse
		if mode == modeTimeout {
			m = proxyHang
		}
		set := func(m proxyMode) func() {
			return func() {
				if err := p.set(m); err != nil {
					r.t.Fatal(err)
				}
			}
		}
		return set(m), set(proxyUp)
	}
	status, ra := http.StatusServiceUnavailable, time.Duration(0)
	if mode == modeRateLimited {
		status, ra = http.StatusTooManyRequests, outageRetryAfter
	}
	switch vendor {
	case integrations.ChannelSlack:
		if mode == modeRateLimited {
			return func() { v.slack.RateLimitNext(1<<30, int(ra/time.Second)) }, func() { v.slack.RateLimitNext(0, 0) }
		}
		return func() { v.slack.FailNext(1<<30, status) }, func() { v.slack.FailNext(0, 0) }
	case integrations.ChannelZoom:
		return func() { v.zoom.Down(status, ra) }, v.zoom.Up
	case integrations.ChannelOpsGenie:
		return func() { v.og.Down(status, ra) }, v.og.Up
	case integrations.ChannelEmail:
		if mode == modeUnavailable {
			return func() { v.smtp.Down(451, "Requested action aborted: queue full, try again later") }, v.smtp.Up
		}
	}
	r.t.Fatalf("no %s outage for %s", mode, vendor)
	return nil, nil
}

// accepted counts what the vendor's fake took (not what it refused).
func (r *outageRun) accepted(vendor string) int {
	switch vendor {
	case integrations.ChannelSlack:
		return len(r.v.slack.Posts())
	case integrations.ChannelZoom:
		n := 0
		for _, m := range r.v.zoom.Meetings() {
			if m.Status == http.StatusCreated {
				n++
			}
		}
		return n
	case integrations.ChannelOpsGenie:
		return len(r.v.og.Creates()) + len(r.v.og.AddResponders()) + len(r.v.og.Closes()) + len(r.v.og.Notes()) + len(r.v.og.Acknowledges())
	case integrations.ChannelEmail:
		return len(r.v.smtp.Messages())
	}
	return 0
}

// outageVendors are the vendors a delivery can fail at.
func outageVendors() []string {
	return []string{integrations.ChannelSlack, integrations.ChannelEmail, integrations.ChannelZoom, integrations.ChannelOpsGenie}
}

// outageScenario is one test of TestVendorOutage: how its run is built
// and what it does with it.
type outageScenario struct {
	name    string
	cfg     outbox.Config
	inHours bool
	proxied string // the vendor behind a fault proxy, if any
	hung    bool   // its calls hang: it runs with the others that do
	test    func(t *testing.T, r *outageRun)
}

// TestVendorOutage runs the vendor outage scenarios: each vendor down, in
// each way a vendor fails, with a restart in the middle (vendor/mode), the
// backlog of a Slack channel draining at Slack's rate, and max_age across
// a restart. They run at once, whatever -parallel says, as they spend most
// of their wall time waiting for the dispatcher, not computing; those whose
// calls hang go last, together, so that their short Timeout does not catch
// the calls of the others on a loaded machine. Every run is built before
// any sends (see newOutageRun).
func TestVendorOutage(t *testing.T) {
	var scenarios []outageScenario
	for _, vendor := range outageVendors() {
		for _, mode := range []string{modeUnavailable, modeRefused, modeRateLimited, modeTimeout} {
			if vendor == integrations.ChannelEmail && mode == modeRateLimited {
				continue // SMTP has no Retry-After: its 4xx is modeUnavailable
			}
			sc := outageScenario{name: vendor + "/" + mode, cfg: outageConfig(), test: outageOf(vendor, mode)}
			if mode == modeRefused || mode == modeTimeout {
				sc.proxied = vendor
			}
			if mode == modeTimeout {
				sc.hung = true
				sc.cfg.Timeout = 150 * time.Millisecond // each attempt waits this long in real time
			}
			scenarios = append(scenarios, sc)
		}
	}
	maxAge := outageConfig()
	maxAge.MaxAge = time.Hour
	scenarios = append(scenarios,
		// In real time for its last part: it goes with the hung ones, which
		// leave the machine idle.
		outageScenario{name: "slack/backlog-at-rate-limit", cfg: outageConfig(), inHours: true, hung: true, test: testBacklogDrainsAtSlackRate},
		outageScenario{name: "slack/max-age-across-restart", cfg: maxAge, inHours: true, test: testMaxAgeAcrossRestart},
	)
	runs := make([]*outageRun, len(scenarios))
	for i, sc := range scenarios {
		runs[i] = newOutageRun(t, sc.cfg, sc.inHours, sc.proxied)
	}
	for _, hung := range []bool{false, true} {
		var wg sync.WaitGroup
		for i, sc := range scenarios {
			if sc.hung != hung {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(sc.name, func(t *testing.T) {
					runs[i].start(t)
					sc.test(t, runs[i])
				})
			}()
		}
		wg.Wait()
	}
}

// outageOf takes vendor down in mode for half an hour of virtual time
// while incidents open, are acknowledged and resolve, and restarts the
// daemon in the middle of it. Afterwards every notification is delivered
// once, the retries kept to their cap (or to the vendor's Retry-After, for
// the whole target), and the backlog went out soon after the vendor came
// back.
func outageOf(vendor, mode string) func(t *testing.T, r *outageRun) {
	return func(t *testing.T, r *outageRun) {
		// Before the outage: an incident reaches every vendor.
		r.fire("warm", "am_firing_v034.json")
		r.until(r.drain(10 * time.Minute).Add(time.Minute))
		if n := r.accepted(vendor); n == 0 {
			t.Fatalf("%s took nothing before the outage", vendor)
		}

		down, up := r.failure(vendor, mode)
		t0 := r.clk.Now()
		down()
		a := r.fire("a", "am_firing_v034.json")
		r.until(t0.Add(time.Minute))
		r.fire("b", "am_firing_v034.json")
		r.until(t0.Add(5 * time.Minute))
		r.ack(a)
		r.until(t0.Add(10 * time.Minute))
		r.resolve("b")
		r.until(t0.Add(15 * time.Minute))
		// A new incident, then the restart: whatever held its target
		// (a Retry-After) must hold it after the restart too.
		r.fire("c", "am_firing_v034.json")
		restartAt := r.clk.Now()
		r.restart()
		r.until(t0.Add(30 * time.Minute))
		recovered := r.clk.Now()
		up()
		done := r.drain(time.Hour)

		r.checkDelivered(vendor)
		r.checkOnce()
		r.checkRetries(vendor, t0, recovered, restartAt, done)
		checkNoSecrets(t, r.e, r.v)
		t.Logf("%s %s: %d attempts to %s over %s of outage; backlog out %s after recovery",
			vendor, mode, r.attemptsTo(vendor, t0, recovered), vendor, recovered.Sub(t0), done.Sub(recovered))
	}
}

func (r *outageRun) attemptsTo(vendor string, from, to time.Time) int {
	n := 0
	for _, a := range r.log.all() {
		if a.channel == vendor && !a.at.Before(from) && a.at.Before(to) {
			n++
		}
	}
	return n
}

// checkDelivered: every notification of every incident says sent, through
// the API, and the incidents carry what their deliveries gave back.
func (r *outageRun) checkDelivered(vendor string) {
	r.t.Helper()
	for _, id := range r.ids {
		inc := r.e.incident(id)
		for _, n := range inc.Notifications {
			// A page still waiting out the pager's outage when its incident
			// resolved is cancelled, not sent (a close follows it, in case
			// an earlier attempt landed).
			cancelled := n.State == store.IntentCancelled && n.Event == integrations.EventPage && inc.Status == store.StatusResolved
			if n.State != store.IntentSent && !cancelled {
				r.t.Errorf("%s: %s %s to %s is %s after %d attempts (%s)", id, n.Channel, n.Event, n.Target, n.State, n.Attempts, n.LastError)
			}
			if cancelled {
				r.cancelled++
			}
		}
		if inc.ZoomURL == "" || inc.SlackTS == "" || inc.PagedAt == nil {
			r.t.Errorf("%s: zoom_url %q slack_ts %q paged_at %v", id, inc.ZoomURL, inc.SlackTS, inc.PagedAt)
		}
	}
	if vendor == integrations.ChannelZoom {
		// The pages went without the link; it follows as a note on each
		// alert once the meeting exists.
		noted := map[string]bool{}
		for _, n := range r.v.og.Notes() {
			if strings.Contains(n.Note, "https://zoom.example/j/") {
				noted[n.Identifier] = true
			}
		}
		for _, c := range r.v.og.Creates()[1:] {
			if !noted[c.Request.Alias] && !strings.Contains(c.Request.Description, "https://zoom.example/j/") {
				r.t.Errorf("page %s: no Zoom link in the alert or a note on it", c.Request.Alias)
			}
		}
		// The announcements went without the link; it follows in each
		// thread once the meeting exists.
		roots := r.v.slack.Messages("sev1")
		for _, root := range roots[1:] {
			found := false
			for _, rep := range root.Replies {
				found = found || strings.Contains(rep.Text, "https://zoom.example/j/")
			}
			if !found && !strings.Contains(string(root.Blocks), "https://zoom.example/j/") {
				r.t.Errorf("root %s: no Zoom link in the announcement or its thread", root.TS)
			}
		}
	}
}

// checkOnce: each vendor took each delivery once. A repeat is allowed only
// after an attempt that timed out while the vendor was reachable (it may
// have taken it: at least once); a refused request never makes one.
func (r *outageRun) checkOnce() {
	r.t.Helper()
	all := r.intents()
	sent := map[string]int{}
	for _, in := range all {
		if in.State == store.IntentSent && in.MergedInto == 0 {
			sent[in.Channel]++
		}
	}
	ambiguous := map[string]int{}
	for _, a := range r.log.all() {
		if a.ambiguous {
			ambiguous[a.channel]++
		}
	}
	for _, vendor := range outageVendors() {
		got := r.accepted(vendor)
		if got < sent[vendor] || got > sent[vendor]+ambiguous[vendor] {
			r.t.Errorf("%s took %d deliveries for %d sent intents (%d attempts timed out while it was reachable)",
				vendor, got, sent[vendor], ambiguous[vendor])
		}
	}
	// And by what identifies a delivery at the vendor.
	if roots := r.v.slack.Messages("sev1"); len(roots) != len(r.ids) && ambiguous[integrations.ChannelSlack] == 0 {
		r.t.Errorf("%d Slack roots in #sev1 for %d incidents", len(roots), len(r.ids))
	}
	aliases := map[string]int{}
	for _, c := range r.v.og.Creates() {
		aliases[c.Request.Alias]++
	}
	for alias, n := range aliases {
		if n != 1 && ambiguous[integrations.ChannelOpsGenie] == 0 {
			r.t.Errorf("OpsGenie alert %s created %d times", alias, n)
		}
	}
	if len(aliases) != len(r.ids)-r.cancelled {
		r.t.Errorf("%d OpsGenie alerts for %d incidents, %d of whose pages were cancelled", len(aliases), len(r.ids), r.cancelled)
	}
}

// checkRetries walks the attempts of every delivery to the vendor that was
// down, in virtual time:
//   - while it is down, no retry sooner than half the first backoff (no
//     hot loop; once it is back, waiting deliveries may go at once);
//   - after a plain failure, the next attempt within BackoffMax, unless a
//     Retry-After held the target longer;
//   - after a Retry-After, no attempt to that target before it ends, from
//     this delivery or any other (the whole target waits), and across the
//     restart too;
//   - attempts before and after the restart (it happened mid-outage);
//   - once the vendor is back, the backlog out within one BackoffMax (or
//     Retry-After) plus its pacing.
func (r *outageRun) checkRetries(vendor string, t0, recovered, restartAt, done time.Time) {
	r.t.Helper()
	const slop = 2 * time.Second // virtual: the Slack pacing of a second per message, and a step
	all := r.intents()
	target := map[string]string{}
	for _, in := range all {
		target[in.Key] = in.Channel + " " + in.Target
	}
	byKey := map[string][]attempt{}
	var holds []attempt // answers that held their target
	var keys []string
	for _, a := range r.log.all() {
		if a.channel != vendor || a.at.Before(t0) {
			continue
		}
		if byKey[a.key] == nil {
			keys = append(keys, a.key)
		}
		byKey[a.key] = append(byKey[a.key], a)
		if a.retryAfter > 0 {
			holds = append(holds, a)
		}
	}
	if len(keys) == 0 {
		r.t.Fatalf("no attempt to %s during the outage", vendor)
	}
	// heldUntil is the end of the latest hold on tgt that began before at.
	heldUntil := func(tgt string, at time.Time) time.Time {
		var until time.Time
		for _, h := range holds {
			if target[h.key] == tgt && h.at.Before(at) && h.at.Add(h.retryAfter).After(until) {
				until = h.at.Add(h.retryAfter)
			}
		}
		return until
	}
	var before, after, gaps int
	var longest time.Duration
	for _, key := range keys {
		as := byKey[key]
		sort.SliceStable(as, func(i, j int) bool { return as[i].at.Before(as[j].at) })
		for i, a := range as {
			if a.at.Before(recovered) && a.err == nil {
				r.t.Errorf("%s %s delivered at %s, while %s was down", vendor, a.event, a.at.Format(time.TimeOnly), vendor)
			}
			if a.at.Before(restartAt) {
				before++
			} else if a.at.Before(recovered) {
				after++
			}
			if hold := heldUntil(target[key], a.at); a.at.Before(hold) {
				r.t.Errorf("%s %s attempted at %s, inside a Retry-After on %s that ran until %s",
					vendor, a.event, a.at.Format(time.TimeOnly), target[key], hold.Format(time.TimeOnly))
			}
			if i == 0 {
				continue
			}
			prev := as[i-1]
			gap := a.at.Sub(prev.at)
			gaps++
			longest = max(longest, gap)
			if gap < r.cfg.BackoffBase/2 && a.at.Before(recovered) {
				r.t.Errorf("%s %s retried %s after the previous attempt, sooner than half the first backoff", vendor, a.event, gap)
			}
			latest := prev.at.Add(r.cfg.BackoffMax)
			if prev.retryAfter > 0 {
				latest = prev.at.Add(prev.retryAfter)
			}
			if hold := heldUntil(target[key], a.at); hold.After(latest) {
				latest = hold
			}
			if a.at.After(latest.Add(slop)) {
				r.t.Errorf("%s %s waited %s between attempts %d and %d (at %s after %s), over its cap: the latest allowed was %s",
					vendor, a.event, gap, i, i+1, a.at.Format(time.TimeOnly), prev.at.Format(time.TimeOnly), latest.Format(time.TimeOnly))
			}
		}
	}
	if before == 0 || after == 0 {
		r.t.Errorf("attempts to %s: %d before the restart, %d after it and before recovery; want both", vendor, before, after)
	}
	wait := r.cfg.BackoffMax
	if len(holds) > 0 {
		wait = max(wait, outageRetryAfter)
	}
	// Counted from the last failure: a call that timed out after the
	// vendor came back (a loaded machine) waits its backoff again.
	from := recovered
	for _, as := range byKey {
		for _, a := range as {
			if a.err != nil && a.at.After(from) {
				from = a.at
			}
		}
	}
	if limit := from.Add(wait + time.Duration(len(all))*time.Second + slop); done.After(limit) {
		r.t.Errorf("the backlog went out %s after %s came back (last failure %s after); want within %s",
			done.Sub(recovered), vendor, from.Sub(recovered), limit.Sub(recovered))
	}
	r.t.Logf("%d retries of %d deliveries to %s; longest wait between two attempts %s", gaps, len(keys), vendor, longest)
}

// After a long Slack outage with a restart in it, the backlog of one
// channel drains at Slack's rate against a fake Slack that answers 429 to
// anything faster than a message per 900ms per channel (a tenth under the
// 1 per second the dispatcher keeps to, for the jitter of loopback calls):
// no 429 at all, and in about backlog/rate once Slack answers again.
func testBacklogDrainsAtSlackRate(t *testing.T, r *outageRun) {
	const backlog = 6
	down, up := r.failure(integrations.ChannelSlack, modeUnavailable)
	t0 := r.clk.Now()
	down()
	for i := range backlog { // S3 incidents: Slack only, all in #incidents
		r.fire(fmt.Sprintf("s3-%d", i), "am_firing_old.json")
		r.until(t0.Add(time.Duration(i+1) * time.Minute))
	}
	r.until(t0.Add(15 * time.Minute))
	r.restart()
	r.until(t0.Add(30 * time.Minute))
	if n := len(r.v.slack.Posts()); n != 0 {
		t.Fatalf("%d Slack posts during the outage", n)
	}

	r.v.slack.StrictRate(900 * time.Millisecond)
	requests := r.v.slack.Requests()
	recovered := r.clk.Now()
	up()
	// Virtual time moves on to the first retry that Slack takes; from
	// there it runs on in real time, the fake's time for its rate.
	first := r.untilAccepted(integrations.ChannelSlack, recovered, time.Hour)
	r.clk.runOn()
	began := time.Now()
	for limit := began.Add(backlog*time.Second + 20*time.Second); len(r.pending()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("%d messages still pending %s after Slack took the first; want the backlog of %d out in about %ds",
				len(r.pending()), time.Since(began).Round(time.Millisecond), backlog, backlog)
		}
	}
	posts := r.v.slack.Posts()
	if len(posts) != backlog {
		t.Fatalf("%d posts, want the backlog of %d", len(posts), backlog)
	}
	if n := r.v.slack.Requests() - requests; n != backlog {
		t.Errorf("%d requests to Slack since it came back for %d posts: the drain ran into the rate limit", n, backlog)
	}
	for _, a := range r.log.all() {
		if a.channel == integrations.ChannelSlack && !a.at.Before(recovered) && a.err != nil {
			t.Errorf("attempt at %s after recovery failed: %v", a.at.Format(time.TimeOnly), a.err)
		}
	}
	span := posts[len(posts)-1].At.Sub(posts[0].At)
	if low := (backlog - 1) * 900 * time.Millisecond; span < low {
		t.Errorf("the backlog went out in %s, faster than Slack's rate allows (%s)", span, low)
	}
	t.Logf("Slack back after %s of outage; first retry taken %s later (virtual); backlog of %d then out in %s (rate 1/s per channel)",
		recovered.Sub(t0), first.Sub(recovered), backlog, span.Round(time.Millisecond))
}

// untilAccepted moves virtual time on until an attempt to vendor at or
// after from succeeds, within the given virtual time, and returns when.
func (r *outageRun) untilAccepted(vendor string, from time.Time, within time.Duration) time.Time {
	r.t.Helper()
	limit := r.clk.Now().Add(within)
	for {
		r.settle()
		for _, a := range r.log.all() {
			if a.channel == vendor && !a.at.Before(from) && a.err == nil {
				return a.at
			}
		}
		if !r.clk.Now().Before(limit) {
			r.t.Fatalf("%s took nothing within %s", vendor, within)
		}
		r.clk.set(r.next(limit))
	}
}

// A notification that outlives max_age while the daemon is down is marked
// failed, with its last error, as soon as the daemon is back, and never
// tried again, though the vendor is up by then; a younger one goes.
func testMaxAgeAcrossRestart(t *testing.T, r *outageRun) {
	down, up := r.failure(integrations.ChannelSlack, modeUnavailable)
	t0 := r.clk.Now()
	down()
	old := r.fire("old", "am_firing_old.json")
	r.until(t0.Add(10 * time.Minute))
	r.ack(old)
	r.until(t0.Add(40 * time.Minute))

	// The daemon stops; Slack recovers while it is down; the daemon is
	// back after max_age has passed for both of old's messages.
	r.e.stopDispatcher()
	before := map[string]int{}
	for _, in := range r.e.incident(old).Notifications {
		before[in.Key] = in.Attempts
	}
	up()
	r.clk.set(t0.Add(75 * time.Minute))
	restartAt := r.clk.Now()
	r.restart()
	young := r.fire("young", "am_firing_old.json")
	r.drain(time.Hour)
	r.until(r.clk.Now().Add(2 * r.cfg.BackoffMax)) // time for a wrong retry to show

	inc := r.e.incident(old)
	var slackIntents int
	for _, n := range inc.Notifications {
		if n.Channel != integrations.ChannelSlack {
			continue
		}
		slackIntents++
		if n.State != store.IntentFailed || !strings.Contains(n.LastError, "max_age 1h0m0s") {
			t.Errorf("%s %s: %s (%s); want failed for max_age", n.Channel, n.Event, n.State, n.LastError)
		}
		if n.Event == integrations.EventOpened && (!strings.Contains(n.LastError, "503") || n.Attempts < 5) {
			t.Errorf("the announcement: %d attempts, last error %q; want its retries and the vendor's last answer (503)", n.Attempts, n.LastError)
		}
		if n.Attempts != before[n.Key] {
			t.Errorf("%s %s: %d attempts after the restart, %d before: tried again", n.Channel, n.Event, n.Attempts, before[n.Key])
		}
	}
	if slackIntents != 3 {
		t.Errorf("%d Slack notifications of %s, want the announcement, the acknowledgement and the root's edit", slackIntents, old)
	}
	for _, a := range r.log.all() {
		if _, ofOld := before[a.key]; ofOld && !a.at.Before(restartAt) {
			t.Errorf("%s %s attempted at %s, after the restart", a.channel, a.event, a.at.Format(time.TimeOnly))
		}
	}
	var failedEntry bool
	for _, en := range inc.Timeline {
		failedEntry = failedEntry || (en.Kind == store.KindNotification && strings.Contains(en.Text, "max_age"))
	}
	if !failedEntry {
		t.Errorf("%s's timeline does not say the notification was given up", old)
	}
	for _, n := range r.e.incident(young).Notifications {
		if n.State != store.IntentSent {
			t.Errorf("%s: %s %s is %s (%s), want sent", young, n.Channel, n.Event, n.State, n.LastError)
		}
	}
	if posts := r.v.slack.Posts(); len(posts) != 1 {
		t.Errorf("%d Slack posts, want only %s's announcement", len(posts), young)
	}
	if !strings.Contains(r.v.logs.String(), "older than max_age") {
		t.Error("giving up was not logged")
	}
}
