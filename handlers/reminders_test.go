package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// withProcess gives the env the default incident process (S1/S2 every 1h,
// S3 every 4h, S4 none), local time in loc and an ETA asked for etaWithin
// after opening (0: never).
func withProcess(t *testing.T, loc *time.Location, etaWithin time.Duration) envOption {
	t.Helper()
	return func(s envSetup) {
		p := processPolicy(t, false)
		p.BusinessHours.Location = loc
		p.ETAWithin = etaWithin
		s.incDeps.Policy = p
	}
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err)
	}
	return loc
}

// setClock moves the env's clock to at.
func (e *testEnv) setClock(at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = at
}

// declareS declares an incident of severity sev and returns its id.
func (e *testEnv) declareS(sev string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite,
		[]byte(fmt.Sprintf(`{"title":"Checkout down (%s)","severity":%q,"declared_by":"ivan"}`, sev, sev)))
	if r.status != http.StatusCreated {
		e.t.Fatalf("declare %s: %d %s", sev, r.status, r.body)
	}
	var inc store.Incident
	r.json(e.t, &inc)
	return inc.ID
}

// post sends a write request and fails the test unless it gets want.
func (e *testEnv) post(method, path, body string, want int) {
	e.t.Helper()
	if r := e.do(method, path, tokWrite, []byte(body)); r.status != want {
		e.t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
}

// remind runs one pass of reminders at the env's clock.
func (e *testEnv) remind() {
	e.t.Helper()
	if err := e.svc.Remind(context.Background()); err != nil {
		e.t.Fatalf("Remind: %v", err)
	}
}

// reminders are the reminder entries of an incident's timeline, as "at
// text" with the time in UTC.
func (e *testEnv) reminders(id string) []string {
	e.t.Helper()
	var out []string
	err := e.db.View(context.Background(), func(tx store.Tx) error {
		entries, err := tx.Timeline(id)
		for _, en := range entries {
			if en.Kind == store.KindReminder {
				if en.By != "responder" {
					e.t.Errorf("reminder by %q, want responder", en.By)
				}
				out = append(out, en.At.UTC().Format("15:04 ")+en.Text)
			}
		}
		return err
	})
	if err != nil {
		e.t.Fatalf("read timeline: %v", err)
	}
	return out
}

// updateIncident changes a stored incident directly, for what the API
// does not offer.
func (e *testEnv) updateIncident(id string, fn func(*store.Incident)) {
	e.t.Helper()
	err := e.db.Update(context.Background(), func(tx store.Tx) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return err
		}
		fn(inc)
		return tx.PutIncident(inc)
	})
	if err != nil {
		e.t.Fatalf("update %s: %v", id, err)
	}
}

// metric returns the value of one sample line of /metrics, "" when absent.
func (e *testEnv) metric(sample string) string {
	e.t.Helper()
	r := e.do(http.MethodGet, "/metrics", "", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

func wantReminders(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d reminders, want %d:\n%s", what, len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%s: reminder %d reads\n  %q\nwant it to start\n  %q", what, i, got[i], want[i])
		}
	}
}

// No update for 61 minutes on an S1: exactly one reminder, naming the
// comms lead; running again at the same moment or within the next
// interval adds none; the next interval without an update adds one more.
func TestReminderAfterAnInterval(t *testing.T) {
	e := newEnv(t, withProcess(t, berlin(t), 0))
	opened := e.clock() // 03:00 UTC, 04:00 CET
	id := e.declareS("S1")
	e.post(http.MethodPut, "/api/v1/incidents/"+id+"/roles", `{"recovery_lead":"ivan","comms_lead":"maria","by":"ivan"}`, http.StatusOK)

	e.setClock(opened.Add(59 * time.Minute))
	e.remind()
	wantReminders(t, "after 59m", e.reminders(id))

	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	e.remind()
	first := "04:01 reminded maria: no update since 03:00 UTC (04:00 CET), when the incident opened; S1 updates are due every 1h and the next is due now: post one at http://127.0.0.1:9095/incidents/" + id + "#update-form"
	wantReminders(t, "after 61m, twice", e.reminders(id), first)

	e.setClock(opened.Add(120 * time.Minute))
	e.remind()
	wantReminders(t, "59m after the reminder", e.reminders(id), first)
	e.setClock(opened.Add(121 * time.Minute))
	e.remind()
	wantReminders(t, "an interval after the reminder", e.reminders(id), first, "05:01 reminded maria: no update since 03:00 UTC (04:00 CET), when")

	if got := e.events(); strings.Count(strings.Join(got, " "), id+":reminder") != 2 {
		t.Errorf("delivered %v, want two reminders", got)
	}
	if v := e.metric(`responder_reminders_total{drill="false",kind="update"}`); v != "2" {
		t.Errorf("responder_reminders_total update = %q, want 2", v)
	}
	inc := e.incident(id)
	if inc.LastReminderAt == nil || !inc.LastReminderAt.Equal(opened.Add(121*time.Minute)) {
		t.Errorf("last_reminder_at = %v, want %v", inc.LastReminderAt, opened.Add(121*time.Minute))
	}
}

// A progress update resets the timer: the next reminder is an interval
// after the update, and says since when.
func TestReminderUpdateResetsTheTimer(t *testing.T) {
	e := newEnv(t, withProcess(t, berlin(t), 0))
	opened := e.clock()
	id := e.declareS("S2")

	e.setClock(opened.Add(45 * time.Minute))
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/updates", `{"text":"rolling back checkout","by":"maria"}`, http.StatusCreated)
	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	e.setClock(opened.Add(104 * time.Minute))
	e.remind()
	wantReminders(t, "within the interval after the update", e.reminders(id))

	e.setClock(opened.Add(105 * time.Minute))
	e.remind()
	wantReminders(t, "an interval after the update", e.reminders(id),
		"04:45 reminded the channel: no update since 03:45 UTC (04:45 CET); S2 updates are due every 1h")

	// An update after a reminder resets the timer again.
	e.setClock(opened.Add(110 * time.Minute))
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/updates", `{"text":"rolled back; watching","by":"maria"}`, http.StatusCreated)
	e.setClock(opened.Add(169 * time.Minute))
	e.remind()
	e.setClock(opened.Add(170 * time.Minute))
	e.remind()
	wantReminders(t, "after the second update", e.reminders(id),
		"04:45 reminded the channel: no update since 03:45 UTC",
		"05:50 reminded the channel: no update since 04:50 UTC (05:50 CET); S2")
}

// Acknowledging does not stop reminders; resolving does.
func TestReminderStopsAtResolution(t *testing.T) {
	e := newEnv(t, withProcess(t, nil, 30*time.Minute))
	opened := e.clock()
	id := e.declareS("S1")
	e.setClock(opened.Add(10 * time.Minute))
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/ack", `{"by":"maria"}`, http.StatusOK)

	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	wantReminders(t, "acknowledged", e.reminders(id),
		"04:01 reminded the channel: no update since 03:00 UTC, when the incident opened",
		"04:01 reminded the channel: no ETA for recovery yet")

	e.setClock(opened.Add(70 * time.Minute))
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", `{"by":"maria"}`, http.StatusOK)
	for _, after := range []time.Duration{2 * time.Hour, 3 * time.Hour, 48 * time.Hour} {
		e.setClock(opened.Add(after))
		e.remind()
	}
	wantReminders(t, "resolved", e.reminders(id),
		"04:01 reminded the channel: no update", "04:01 reminded the channel: no ETA")
}

// Reminders are derived from the stored incident: a restart neither
// repeats one already posted nor loses one that fell due while the daemon
// was down, and a long downtime gives one reminder, not one per interval.
func TestReminderAcrossRestarts(t *testing.T) {
	opts := func() []envOption { return []envOption{withProcess(t, nil, 30*time.Minute)} }
	e := newEnv(t, opts()...)
	delivered := 0 // reminder deliveries, over every process
	restart := func() {
		delivered += strings.Count(strings.Join(e.events(), " "), ":reminder")
		e = reopenEnv(t, e, opts()...)
	}
	opened := e.clock()
	id := e.declareS("S1")
	e.post(http.MethodPut, "/api/v1/incidents/"+id+"/roles", `{"recovery_lead":"ivan","comms_lead":"maria","by":"ivan"}`, http.StatusOK)
	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	posted := []string{"04:01 reminded maria: no update since 03:00 UTC", "04:01 reminded maria: no ETA for recovery yet"}
	wantReminders(t, "before the restart", e.reminders(id), posted...)

	// Restarted at the same moment: nothing is posted again.
	restart()
	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	wantReminders(t, "restarted at once", e.reminders(id), posted...)

	// Down from 04:30 to 07:30: three intervals missed, one reminder.
	e.setClock(opened.Add(90 * time.Minute))
	e.remind()
	restart()
	e.setClock(opened.Add(270 * time.Minute))
	e.remind()
	e.remind()
	posted = append(posted, "07:30 reminded maria: no update since 03:00 UTC")
	wantReminders(t, "after a long downtime", e.reminders(id), posted...)

	// Down across the moment the next one falls due (08:30): posted on
	// restart, once.
	restart()
	e.setClock(opened.Add(335 * time.Minute))
	e.remind()
	e.remind()
	posted = append(posted, "08:35 reminded maria: no update since 03:00 UTC")
	wantReminders(t, "due while down", e.reminders(id), posted...)
	restart()
	if delivered != len(posted) {
		t.Errorf("%d reminders delivered, want each of the %d posted once", delivered, len(posted))
	}
}

// Intervals are real time, and times are shown in UTC with the local zone
// beside: around the summer-time changes in Berlin, the local clock jumps
// or repeats an hour while reminders come one hour apart.
func TestReminderAcrossDST(t *testing.T) {
	type step struct {
		at     string // UTC
		update bool   // post an update at this time, else run Remind
		want   string // the reminder posted, "" for none
	}
	tests := []struct {
		name   string
		opened string
		steps  []step
	}{
		{
			// 2026-03-29 01:00 UTC: CET (+1) becomes CEST (+2).
			name: "spring forward", opened: "2026-03-29T00:30:00Z",
			steps: []step{
				// 01:29 UTC is 03:29 CEST: nearly two hours after the
				// opening on the wall clock, 59 minutes in fact.
				{at: "2026-03-29T01:29:00Z"},
				{at: "2026-03-29T01:30:00Z", want: "01:30 reminded the channel: no update since 00:30 UTC (01:30 CET), when the incident opened;"},
				{at: "2026-03-29T01:40:00Z", update: true}, // 03:40 CEST
				{at: "2026-03-29T02:39:00Z"},
				{at: "2026-03-29T02:40:00Z", want: "02:40 reminded the channel: no update since 01:40 UTC (03:40 CEST); S1"},
				{at: "2026-03-29T03:40:00Z", want: "03:40 reminded the channel: no update since 01:40 UTC (03:40 CEST); S1"},
			},
		},
		{
			// 2026-10-25 01:00 UTC: CEST (+2) becomes CET (+1); 02:00 to
			// 03:00 local happens twice.
			name: "fall back", opened: "2026-10-25T00:00:00Z",
			steps: []step{
				{at: "2026-10-25T00:50:00Z", update: true}, // 02:50 CEST
				// 01:30 UTC is 02:30 CET: earlier on the wall clock than
				// the update, 40 minutes later in fact.
				{at: "2026-10-25T01:30:00Z"},
				{at: "2026-10-25T01:49:00Z"},
				// 01:50 UTC is 02:50 CET: the same wall-clock time as the
				// update, an hour later; the zones tell them apart.
				{at: "2026-10-25T01:50:00Z", want: "01:50 reminded the channel: no update since 00:50 UTC (02:50 CEST); S1"},
				{at: "2026-10-25T02:49:00Z"},
				{at: "2026-10-25T02:50:00Z", want: "02:50 reminded the channel: no update since 00:50 UTC (02:50 CEST); S1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withProcess(t, berlin(t), 0))
			e.setClock(mustTime(t, tt.opened))
			id := e.declareS("S1")
			var want []string
			for _, st := range tt.steps {
				e.setClock(mustTime(t, st.at))
				if st.update {
					e.post(http.MethodPost, "/api/v1/incidents/"+id+"/updates", `{"text":"still rolling back","by":"maria"}`, http.StatusCreated)
					continue
				}
				e.remind()
				if st.want != "" {
					want = append(want, st.want)
				}
				wantReminders(t, "at "+st.at, e.reminders(id), want...)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// The ETA is asked for once, eta_within after opening, and not at all when
// one was given in time.
func TestReminderAsksForAnETAOnce(t *testing.T) {
	e := newEnv(t, withProcess(t, berlin(t), 30*time.Minute))
	opened := e.clock()
	noETA := e.declareS("S2")
	withETA := e.declareS("S3")
	e.setClock(opened.Add(10 * time.Minute))
	eta := opened.Add(3 * time.Hour).Format(time.RFC3339)
	e.post(http.MethodPost, "/api/v1/incidents/"+withETA+"/updates", `{"text":"failing over","eta":"`+eta+`","by":"maria"}`, http.StatusCreated)

	e.setClock(opened.Add(29 * time.Minute))
	e.remind()
	wantReminders(t, "before eta_within", e.reminders(noETA))
	for _, m := range []time.Duration{30, 31, 45} {
		e.setClock(opened.Add(m * time.Minute))
		e.remind()
	}
	askedAt := opened.Add(30 * time.Minute)
	asked := "03:30 reminded the channel: no ETA for recovery yet, 30m after the incident opened at 03:00 UTC (04:00 CET): give one with an update at http://127.0.0.1:9095/incidents/" + noETA + "#update-form"
	wantReminders(t, "after eta_within", e.reminders(noETA), asked)
	wantReminders(t, "with an ETA", e.reminders(withETA))

	// The update reminder comes on its own time; the ETA is not asked again.
	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	e.setClock(opened.Add(5 * time.Hour))
	e.remind()
	wantReminders(t, "later", e.reminders(noETA), asked,
		"04:01 reminded the channel: no update since 03:00 UTC (04:00 CET)", "08:00 reminded the channel: no update since 03:00 UTC")
	if inc := e.incident(noETA); inc.ETARequestedAt == nil || !inc.ETARequestedAt.Equal(askedAt) {
		t.Errorf("eta_requested_at = %v, want %v", inc.ETARequestedAt, askedAt)
	}
	if inc := e.incident(withETA); inc.ETARequestedAt != nil {
		t.Errorf("eta_requested_at = %v on an incident with an ETA", inc.ETARequestedAt)
	}
	if v := e.metric(`responder_reminders_total{drill="false",kind="eta"}`); v != "1" {
		t.Errorf("responder_reminders_total eta = %q, want 1", v)
	}
}

// Each severity on its own interval; S4 has none, so it gets neither
// reminders nor an ETA request.
func TestReminderIntervalBySeverity(t *testing.T) {
	tests := []struct {
		sev      string
		interval time.Duration // 0: never
	}{
		{"S1", time.Hour},
		{"S2", time.Hour},
		{"S3", 4 * time.Hour},
		{"S4", 0},
	}
	for _, tt := range tests {
		t.Run(tt.sev, func(t *testing.T) {
			e := newEnv(t, withProcess(t, nil, 30*time.Minute))
			opened := e.clock()
			id := e.declareS(tt.sev)
			// Give an ETA so that only the update reminder is looked at.
			e.updateIncident(id, func(inc *store.Incident) { eta := opened.Add(24 * time.Hour); inc.ETA = &eta })
			if tt.interval == 0 {
				for _, after := range []time.Duration{time.Hour, 4 * time.Hour, 72 * time.Hour} {
					e.setClock(opened.Add(after))
					e.remind()
				}
				e.updateIncident(id, func(inc *store.Incident) { inc.ETA = nil })
				e.remind()
				wantReminders(t, tt.sev, e.reminders(id))
				return
			}
			e.setClock(opened.Add(tt.interval - time.Minute))
			e.remind()
			wantReminders(t, "a minute early", e.reminders(id))
			e.setClock(opened.Add(tt.interval))
			e.remind()
			wantReminders(t, "on time", e.reminders(id), opened.Add(tt.interval).Format("15:04")+" reminded the channel: no update since 03:00 UTC")
		})
	}
}

// A drill runs the same process: it gets reminders, counted apart.
func TestReminderForADrill(t *testing.T) {
	e := newEnv(t, withProcess(t, nil, 0))
	opened := e.clock()
	id := e.declareS("S2")
	e.updateIncident(id, func(inc *store.Incident) { inc.Drill, inc.Source = true, store.SourceDrill })
	e.setClock(opened.Add(time.Hour))
	e.remind()
	wantReminders(t, "drill", e.reminders(id), "04:00 reminded the channel: no update since 03:00 UTC")
	if v := e.metric(`responder_reminders_total{drill="true",kind="update"}`); v != "1" {
		t.Errorf("responder_reminders_total drill = %q, want 1", v)
	}
	if v := e.metric(`responder_reminders_total{drill="false",kind="update"}`); v != "" {
		t.Errorf("a drill's reminder counted as real: %q", v)
	}
}

// Passes that run at the same moment post each reminder once: the
// decision is taken again inside the write.
func TestReminderConcurrentPasses(t *testing.T) {
	e := newEnv(t, withProcess(t, nil, 30*time.Minute))
	opened := e.clock()
	var ids []string
	for range 5 {
		ids = append(ids, e.declareS("S1"))
	}
	e.setClock(opened.Add(61 * time.Minute))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.svc.Remind(context.Background()); err != nil {
				t.Errorf("Remind: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if got := e.reminders(id); len(got) != 2 {
			t.Errorf("%s: %d reminders, want an update reminder and an ETA request:\n%s", id, len(got), strings.Join(got, "\n"))
		}
	}
	if v := e.metric(`responder_reminders_total{drill="false",kind="update"}`); v != "5" {
		t.Errorf("responder_reminders_total update = %q, want 5", v)
	}
}

// With the fake Slack: the reminder is a reply in the incident's thread
// that calls on the channel while no comms lead is set, and on the comms
// lead once one is (a Slack user ID becomes a real mention).
func TestReminderInTheSlackThread(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	opened := e.clock()
	id := e.declareS("S1")
	e.flush() // the announcement, with its bridge
	e.setClock(opened.Add(61 * time.Minute))
	e.remind()
	e.flush()

	roots := v.slack.Messages("sev1")
	if len(roots) != 1 || len(roots[0].Replies) != 1 {
		t.Fatalf("#sev1 holds %+v, want the announcement with one reply", roots)
	}
	reply := roots[0].Replies[0]
	if !strings.HasPrefix(reply.Text, "<!channel> no update since 03:00 UTC") {
		t.Errorf("reply text %q, want it to call on the channel", reply.Text)
	}
	if want := ":speech_balloon: <!channel> no update since 03:00 UTC, when the incident opened; S1 updates are due every 1h"; !strings.Contains(firstMrkdwn(t, reply.Blocks), want) {
		t.Errorf("reply blocks %s lack %q", reply.Blocks, want)
	}

	for i, tc := range []struct{ lead, want string }{
		{"maria", "@maria no update since"},
		{"U024BE7LH", "<@U024BE7LH> no update since"},
	} {
		e.post(http.MethodPut, "/api/v1/incidents/"+id+"/roles", `{"recovery_lead":"ivan","comms_lead":"`+tc.lead+`","by":"ivan"}`, http.StatusOK)
		e.setClock(opened.Add(time.Duration(2+i)*time.Hour + time.Minute))
		e.remind()
		e.flush()
		replies := v.slack.Messages("sev1")[0].Replies
		last := replies[len(replies)-1]
		if !strings.HasPrefix(last.Text, tc.want) || strings.Contains(last.Text, "<!channel>") {
			t.Errorf("comms lead %s: reply %q, want it to start %q", tc.lead, last.Text, tc.want)
		}
	}
	// One roles reply and one reminder for each lead, after the first.
	if n := len(v.slack.Messages("sev1")[0].Replies); n != 5 {
		t.Errorf("%d replies in the thread, want 5", n)
	}
	checkNoSecrets(t, e, &v)
}

func firstMrkdwn(t *testing.T, blocks json.RawMessage) string {
	t.Helper()
	var bs []struct {
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil || len(bs) == 0 {
		t.Fatalf("blocks %s: %v", blocks, err)
	}
	return bs[0].Text.Text
}
