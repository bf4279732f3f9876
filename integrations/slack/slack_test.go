package slack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

const token = "xoxb-111-222-SECRETsecretSECRET"

var (
	openedAt   = time.Date(2025, 3, 1, 2, 14, 0, 0, time.UTC)
	resolvedAt = time.Date(2025, 3, 1, 3, 2, 0, 0, time.UTC)
)

// incident is an S1 from Alertmanager, out of hours, with customer impact,
// a bridge and more labels than are shown.
func incident() integrations.Incident {
	return integrations.Incident{
		ID:          "INC-4",
		Title:       "High error rate on checkout",
		Description: "5xx ratio above 5% for 10 minutes",
		Severity:    "S1",
		Status:      "open",
		Source:      "alertmanager",
		DedupKey:    `{}:{alertname="HighErrorRate"}`,
		Team:        "payments",
		Labels: map[string]string{
			"alertname": "HighErrorRate", "service": "checkout", "env": "prod", "instance": "10.0.0.7:9090",
			"job": "checkout", "cluster": "eu-1", "namespace": "shop", "team": "payments",
			"severity": "critical", "region": "eu-west-1", "az": "b", "pod": "checkout-7f9", "prometheus": "k8s",
			"replica": "1", "tier": "web",
		},
		RunbookURL:     "https://runbooks.example.com/checkout/high-error-rate",
		SourceURL:      "http://prometheus.example.com/graph?g0.expr=rate(x)&g0.tab=1",
		ZoomURL:        "https://zoom.us/j/123456789",
		URL:            "https://responder.example.com/incidents/INC-4",
		CustomerImpact: true,
		OutOfHours:     true,
		CreatedAt:      openedAt,
		AlertsFiring:   3,
		AlertsTotal:    4,
	}
}

func opened(inc integrations.Incident, target string) integrations.Message {
	return integrations.Message{Key: "k-open", Event: integrations.EventOpened, Text: "opened", Target: target,
		At: openedAt, Incident: inc}
}

func resolved(inc integrations.Incident) integrations.Incident {
	inc.Status = "resolved"
	inc.ResolvedAt = &resolvedAt
	inc.ResolvedBy = "maria"
	inc.AcknowledgedBy = "maria"
	inc.Summary = "A bad deploy of checkout v2.3.1; rolled back at 02:58."
	inc.AlertsFiring = 0
	return inc
}

type fixture struct {
	srv *slacktest.Server
	n   *slack.Notifier
	ops string // the channel ID of #ops
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := slacktest.New(token)
	t.Cleanup(srv.Close)
	ops := srv.AddChannel("ops")
	return fixture{srv: srv, n: newNotifier(t, token, srv.URL()), ops: ops}
}

func newNotifier(t *testing.T, tok, apiURL string) *slack.Notifier {
	t.Helper()
	n, err := slack.New(slack.Config{Token: tok, APIURL: apiURL, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("slack.New: %v", err)
	}
	return n
}

func (f fixture) notify(t *testing.T, m integrations.Message) integrations.Receipt {
	t.Helper()
	r, err := f.n.Notify(context.Background(), m)
	if err != nil {
		t.Fatalf("Notify %s: %v", m.Event, err)
	}
	return r
}

// With a display zone, every time in a message has the local time beside
// the UTC one; past local midnight the local date is given too.
func TestLocalTimeBesideUTC(t *testing.T) {
	srv := slacktest.New(token)
	t.Cleanup(srv.Close)
	ops := srv.AddChannel("ops")
	n, err := slack.New(slack.Config{Token: token, APIURL: srv.URL(), HTTPClient: &http.Client{Timeout: 5 * time.Second},
		Clock: integrations.Clock{Zone: time.FixedZone("AEDT", 11*3600)}})
	if err != nil {
		t.Fatal(err)
	}
	inc := incident()
	eta := time.Date(2025, 3, 1, 3, 30, 0, 0, time.UTC)
	inc.ETA = &eta
	r, err := n.Notify(context.Background(), opened(inc, "#ops"))
	if err != nil {
		t.Fatal(err)
	}
	reply := integrations.Message{Key: "k-ack", Event: integrations.EventAcknowledged, Text: "acknowledged by maria",
		Target: "#ops", Thread: r.Thread, At: time.Date(2025, 3, 1, 2, 20, 5, 0, time.UTC), Incident: inc}
	if _, err := n.Notify(context.Background(), reply); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages(ops)
	if len(msgs) != 1 || len(msgs[0].Replies) != 1 {
		t.Fatalf("channel holds %+v, want a root and one reply", msgs)
	}
	root, rep := allText(t, msgs[0].Blocks), allText(t, msgs[0].Replies[0].Blocks)
	for _, w := range []string{"*Opened*\n2025-03-01 02:14 UTC (13:14 AEDT)", "*ETA*\n2025-03-01 03:30 UTC (14:30 AEDT)"} {
		if !strings.Contains(root, w) {
			t.Errorf("root lacks %q; it reads:\n%s", w, root)
		}
	}
	if w := "2025-03-01 02:20:05 UTC (13:20 AEDT)"; !strings.Contains(rep, w) {
		t.Errorf("reply lacks %q; it reads:\n%s", w, rep)
	}
	late := time.Date(2025, 3, 1, 14, 0, 0, 0, time.UTC)
	if got := (integrations.Clock{Zone: time.FixedZone("AEDT", 11*3600)}).Format(late, "2006-01-02 15:04 UTC"); got != "2025-03-01 14:00 UTC (2025-03-02 01:00 AEDT)" {
		t.Errorf("past local midnight: %q", got)
	}
}

// texts returns the text of every text object in blocks, by type.
func texts(t *testing.T, blocks json.RawMessage) (plain, mrkdwn []string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(blocks, &v); err != nil {
		t.Fatalf("blocks are not JSON: %v\n%s", err, blocks)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				switch v["type"] {
				case "plain_text":
					plain = append(plain, s)
				case "mrkdwn":
					mrkdwn = append(mrkdwn, s)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return plain, mrkdwn
}

func allText(t *testing.T, blocks json.RawMessage) string {
	plain, md := texts(t, blocks)
	return strings.Join(append(plain, md...), "\n")
}

func TestRootAnnouncement(t *testing.T) {
	tests := []struct {
		name   string
		change func(*integrations.Incident)
		msg    func(*integrations.Message)
		want   []string
		absent []string
	}{
		{
			name: "S1 out of hours with customer impact and a bridge",
			want: []string{
				":rotating_light: [S1] INC-4: High error rate on checkout",
				"*Status*\nopen", "*Severity*\nS1", "*Team*\npayments", "*Source*\nalertmanager",
				"*Opened*\n2025-03-01 02:14 UTC", "*Alerts*\n3 firing of 4",
				"5xx ratio above 5% for 10 minutes",
				"*alertname*: `HighErrorRate`", "*service*: `checkout`", "*env*: `prod`",
				"*instance*: `10.0.0.7:9090`", "*job*: `checkout`", "*cluster*: `eu-1`",
				"*namespace*: `shop`", "*team*: `payments`",
				"*az*: `b`", "*pod*: `checkout-7f9`", "*prometheus*: `k8s`", "*region*: `eu-west-1`",
				"*replica*: `1`", "_… and 2 more labels_",
				"<https://runbooks.example.com/checkout/high-error-rate|Runbook>",
				"<http://prometheus.example.com/graph?g0.expr=rate(x)&amp;g0.tab=1|Alert source>",
				"<https://zoom.us/j/123456789|Join the bridge (Zoom)>",
				"<https://responder.example.com/incidents/INC-4|Open INC-4 in Responder>",
				"*Out of hours*", "*Customer impact*",
			},
			absent: []string{"*severity*", "*tier*", "[DRILL]", "Drill"},
		},
		{
			name: "S3 in hours without bridge, runbook or impact",
			change: func(inc *integrations.Incident) {
				inc.Severity, inc.ZoomURL, inc.RunbookURL = "S3", "", ""
				inc.OutOfHours, inc.CustomerImpact = false, false
				inc.Labels = map[string]string{"alertname": "DiskFilling", "instance": "db-1"}
			},
			want:   []string{":warning: [S3] INC-4: High error rate on checkout", "*alertname*: `DiskFilling`", "*instance*: `db-1`", "Alert source"},
			absent: []string{"Zoom", "Runbook", "Out of hours", "Customer impact", "more labels", "*service*"},
		},
		{
			name: "the state of the incident: roles, ETA, who was paged, the firing alerts",
			change: func(inc *integrations.Incident) {
				eta := time.Date(2025, 3, 1, 3, 30, 0, 0, time.UTC)
				inc.RecoveryLead, inc.CommsLead, inc.ETA = "maria", "", &eta
				inc.Paged = []string{"team:sre-oncall through opsgenie: paged at 02:15 UTC"}
				inc.AlertsFiring = 7
				inc.FiringAlerts = []string{"HighErrorRate: 5xx above 5%", "HighLatency on checkout-1", "PodCrashLooping (checkout)",
					"QueueBacklog on kafka-2", "CacheMiss: hit rate under 50%"}
			},
			want: []string{"*Roles*\nrecovery maria, comms nobody yet", "*ETA*\n2025-03-01 03:30 UTC",
				"*Paged*\nteam:sre-oncall through opsgenie: paged at 02:15 UTC",
				"*Firing alerts*\n• HighErrorRate: 5xx above 5%\n• HighLatency on checkout-1", "• CacheMiss: hit rate under 50%",
				"and 2 more alerts"},
			absent: []string{"roles not assigned"},
		},
		{
			name: "customer engineering's root says what they need to know",
			msg: func(m *integrations.Message) {
				m.Event, m.Text = integrations.EventCustomer, "Checkout fails for some EU customers; next update 03:00 UTC"
			},
			want: []string{":rotating_light: [S1] INC-4: High error rate on checkout",
				":busts_in_silhouette: Checkout fails for some EU customers; next update 03:00 UTC", "*Customer impact*"},
		},
		{
			name: "a runbook that is not a web link shows as text",
			change: func(inc *integrations.Incident) {
				inc.RunbookURL = "wiki:Checkout/Errors"
			},
			want:   []string{"Runbook: `wiki:Checkout/Errors`"},
			absent: []string{"|Runbook>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			inc := incident()
			if tt.change != nil {
				tt.change(&inc)
			}
			m := opened(inc, "#ops")
			if tt.msg != nil {
				tt.msg(&m)
			}
			r := f.notify(t, m)
			if r.Channel != f.ops || r.Thread == "" {
				t.Fatalf("receipt = %+v, want channel %s and a ts", r, f.ops)
			}
			msgs := f.srv.Messages(f.ops)
			if len(msgs) != 1 || msgs[0].TS != r.Thread {
				t.Fatalf("channel holds %+v, want one root with ts %s", msgs, r.Thread)
			}
			all := allText(t, msgs[0].Blocks)
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("root lacks %q; it reads:\n%s", w, all)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(all, a) {
					t.Errorf("root has %q; it reads:\n%s", a, all)
				}
			}
			if want := "[S1] INC-4: High error rate on checkout (open)"; inc.Severity == "S1" && msgs[0].Text != want {
				t.Errorf("fallback text = %q, want %q", msgs[0].Text, want)
			}
		})
	}
}

func TestRepliesLandInTheThread(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	root := f.notify(t, opened(inc, "#ops"))

	tests := []struct {
		event, text string
		want        string
	}{
		{integrations.EventAlertJoined, "1 more alert joined: HighLatency", ":heavy_plus_sign: 1 more alert joined: HighLatency"},
		{integrations.EventAcknowledged, "acknowledged by maria", ":eyes: acknowledged by maria"},
		{integrations.EventSeverityRaised, "severity raised to S1 by ops-bot", ":arrow_double_up: severity raised to S1 by ops-bot"},
		{integrations.EventNote, "rolled back checkout to v2.3.0", ":memo: rolled back checkout to v2.3.0"},
		{integrations.EventResolved, "resolved by maria", ":white_check_mark: resolved by maria"},
		{integrations.EventReopened, "reopened: alerts firing again", ":repeat: reopened: alerts firing again"},
		{"role_assigned", "maria is incident commander", ":speech_balloon: maria is incident commander"},
		{"status_update", "", ":speech_balloon: status update"},
		{integrations.EventCustomer, "customer engineering informed", ":busts_in_silhouette: customer engineering informed"},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			r := f.notify(t, integrations.Message{Event: tt.event, Text: tt.text, Target: root.Channel,
				Thread: root.Thread, At: openedAt.Add(time.Minute), Incident: inc})
			if r.Channel != f.ops || r.Thread != root.Thread {
				t.Errorf("receipt = %+v, want channel %s thread %s", r, f.ops, root.Thread)
			}
			posts := f.srv.Posts()
			last := posts[len(posts)-1]
			if last.ThreadTS != root.Thread || last.Channel != f.ops {
				t.Fatalf("reply went to channel %s thread %q, want %s thread %s", last.Channel, last.ThreadTS, f.ops, root.Thread)
			}
			_, md := texts(t, last.Blocks)
			if len(md) == 0 || md[0] != tt.want {
				t.Errorf("reply reads %q, want %q", md, tt.want)
			}
			if !strings.Contains(allText(t, last.Blocks), "2025-03-01 02:15:00 UTC") {
				t.Errorf("reply does not say when it happened: %s", last.Blocks)
			}
		})
	}
	msgs := f.srv.Messages(f.ops)
	if len(msgs) != 1 || len(msgs[0].Replies) != len(tests) {
		t.Fatalf("got %d roots with %d replies, want 1 root with %d replies", len(msgs), len(msgs[0].Replies), len(tests))
	}
}

func TestReplyWithoutThreadNamesTheIncident(t *testing.T) {
	f := newFixture(t)
	r := f.notify(t, integrations.Message{Event: integrations.EventAcknowledged, Text: "acknowledged by maria",
		Target: "#ops", Incident: incident()})
	if r.Thread != "" {
		t.Errorf("receipt thread = %q, want none: this is no root", r.Thread)
	}
	msgs := f.srv.Messages(f.ops)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	if want := "[S1] INC-4: High error rate on checkout: acknowledged by maria"; msgs[0].Text != want {
		t.Errorf("text = %q, want %q", msgs[0].Text, want)
	}
}

func TestRootUpdateShowsTheFinalState(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	root := f.notify(t, opened(inc, "#ops"))
	f.notify(t, integrations.Message{Event: integrations.EventResolved, Text: "resolved by maria",
		Target: root.Channel, Thread: root.Thread, Incident: resolved(inc)})

	r := f.notify(t, integrations.Message{Event: integrations.EventRootUpdate, Text: "resolved by maria",
		Target: root.Channel, Thread: root.Thread, At: resolvedAt, Incident: resolved(inc)})
	if r != root {
		t.Errorf("receipt = %+v, want the root's %+v", r, root)
	}
	msgs := f.srv.Messages(f.ops)
	if len(msgs) != 1 || msgs[0].Edits != 1 || len(msgs[0].Replies) != 1 {
		t.Fatalf("channel holds %+v, want one root edited once with one reply", msgs)
	}
	all := allText(t, msgs[0].Blocks)
	for _, w := range []string{
		":white_check_mark: [S1] INC-4: High error rate on checkout",
		"*Status*\nresolved by maria", "*Resolved*\n2025-03-01 03:02 UTC", "*Acknowledged by*\nmaria",
		"*Summary*\nA bad deploy of checkout v2.3.1; rolled back at 02:58.", "*Alerts*\n0 firing of 4",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("edited root lacks %q; it reads:\n%s", w, all)
		}
	}
	if strings.Contains(all, ":rotating_light:") {
		t.Errorf("edited root still looks open:\n%s", all)
	}
	if want := "[S1] INC-4: High error rate on checkout (resolved)"; msgs[0].Text != want {
		t.Errorf("fallback text = %q, want %q", msgs[0].Text, want)
	}
}

func TestCollapsedLines(t *testing.T) {
	lines := func(n int, f string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(f, i+1)
		}
		return out
	}
	tests := []struct {
		name      string
		text      string
		lines     []string
		wantHead  string
		wantItems int
		wantTail  string
	}{
		{"few lines", "3 more alerts joined:", lines(3, "HighLatency instance=web-%d"), ":heavy_plus_sign: 3 more alerts joined:", 3, ""},
		{"exactly twenty", "", lines(20, "alert %d"), ":heavy_plus_sign: 20 more alerts joined:", 20, ""},
		{"a storm", "500 more alerts joined:", lines(500, "HighLatency instance=web-%d"), ":heavy_plus_sign: 500 more alerts joined:", 20, "_… and 480 more_"},
		{"huge lines stay within a section", "", lines(30, strings.Repeat("<&>", 400)+"%d"), ":heavy_plus_sign: 30 more alerts joined:", -1, "more_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			root := f.notify(t, opened(incident(), "#ops"))
			f.notify(t, integrations.Message{Event: integrations.EventAlertJoined, Text: tt.text, Lines: tt.lines,
				Target: root.Channel, Thread: root.Thread, Incident: incident()})
			posts := f.srv.Posts()
			_, md := texts(t, posts[len(posts)-1].Blocks)
			if len(md) != 2 {
				t.Fatalf("reply has texts %q, want a head and a list", md)
			}
			if md[0] != tt.wantHead {
				t.Errorf("head = %q, want %q", md[0], tt.wantHead)
			}
			if n := len([]rune(md[1])); n > 3000 {
				t.Errorf("list is %d characters, over Slack's 3000", n)
			}
			items := strings.Count(md[1], "• ")
			if tt.wantItems >= 0 && items != tt.wantItems {
				t.Errorf("list has %d items, want %d:\n%s", items, tt.wantItems, md[1])
			}
			if items > 20 {
				t.Errorf("list has %d items, over 20", items)
			}
			if tt.wantTail != "" && !strings.HasSuffix(md[1], tt.wantTail) {
				t.Errorf("list ends %q, want %q", md[1][max(0, len(md[1])-40):], tt.wantTail)
			}
			if tt.wantTail == "" && strings.Contains(md[1], "more_") {
				t.Errorf("list says more were left out, but none were:\n%s", md[1])
			}
		})
	}
}

func TestDrillPrefixesEveryMessage(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	inc.Drill, inc.Source = true, "drill"
	root := f.notify(t, opened(inc, "#ops"))
	f.notify(t, integrations.Message{Event: integrations.EventAcknowledged, Text: "acknowledged by maria",
		Target: root.Channel, Thread: root.Thread, Incident: inc})
	f.notify(t, integrations.Message{Event: integrations.EventAlertJoined, Lines: []string{"a", "b"},
		Target: root.Channel, Thread: root.Thread, Incident: inc})
	f.notify(t, integrations.Message{Event: integrations.EventRootUpdate, Target: root.Channel, Thread: root.Thread,
		Incident: resolved(inc)})
	f.notify(t, integrations.Message{Event: integrations.EventNote, Text: "no thread", Target: "#ops", Incident: inc})

	posts := f.srv.Posts()
	if len(posts) != 5 {
		t.Fatalf("got %d posts, want 5", len(posts))
	}
	for i, p := range posts {
		if !strings.HasPrefix(p.Text, "[DRILL] ") {
			t.Errorf("post %d (%s) text %q lacks the [DRILL] prefix", i, p.Method, p.Text)
		}
		plain, md := texts(t, p.Blocks)
		first := append(plain, md...)[0]
		if !strings.HasPrefix(first, "[DRILL] ") {
			t.Errorf("post %d (%s) first block %q lacks the [DRILL] prefix", i, p.Method, first)
		}
	}
}

func TestUserTextIsInert(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	inc.Title = "<!channel> <script>alert(1)</script>"
	inc.Description = "ping <!here> and <@U123> & <#C999> <https://evil.example|click me>"
	inc.Team = "<!subteam^S123>"
	inc.Labels = map[string]string{"alertname": "<!channel>", "service": "a`b<c", "<!everyone>": "x"}
	inc.RunbookURL = "https://runbooks.example.com/a|<!channel>"
	inc.SourceURL = "javascript:alert(1)"
	root := f.notify(t, opened(inc, "#ops"))
	f.notify(t, integrations.Message{Event: integrations.EventNote, Text: "<!channel> look", Lines: []string{"<!here>"},
		Target: root.Channel, Thread: root.Thread, Incident: inc})

	for _, p := range f.srv.Posts() {
		plain, md := texts(t, p.Blocks)
		for _, s := range append(md, p.Text) { // the top-level text is parsed as mrkdwn too
			for i := 0; i < len(s); i++ {
				if s[i] == '<' && !strings.HasPrefix(s[i:], "<https://") && !strings.HasPrefix(s[i:], "<http://") {
					t.Errorf("mrkdwn %q has a live control sequence at %d", s, i)
				}
			}
			if strings.Contains(s, "<!") || strings.Contains(s, "<@") || strings.Contains(s, "|click me>") {
				t.Errorf("mrkdwn %q can ping or link", s)
			}
		}
		for _, s := range plain { // plain_text is never parsed: a mention there is inert as typed
			if strings.Contains(s, "&lt;") {
				t.Errorf("plain_text %q is escaped: Slack would show the entity", s)
			}
		}
	}
	all := allText(t, f.srv.Messages(f.ops)[0].Blocks)
	for _, w := range []string{
		"*alertname*: `&lt;!channel&gt;`", "*service*: `a'b&lt;c`", "*&lt;!everyone&gt;*: `x`",
		"ping &lt;!here&gt; and &lt;@U123&gt; &amp; &lt;#C999&gt;",
		"<https://runbooks.example.com/a%7C%3C%21channel%3E|Runbook>", "Alert source: `javascript:alert(1)`",
		"[S1] INC-4: <!channel> <script>alert(1)</script>",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("root lacks %q; it reads:\n%s", w, all)
		}
	}
}

// The message's Mention is the only mention a reply carries: "channel" and
// a Slack user ID become live mentions, any other name stays inert text,
// and the text beside them is still escaped.
func TestReplyMention(t *testing.T) {
	tests := []struct {
		name, mention string
		drill         bool
		thread        bool
		wantHead      string // the first mrkdwn text
		wantText      string // the fallback text
	}{
		{"nobody", "", false, true,
			":speech_balloon: no update since 02:14 UTC &lt;!here&gt;", "no update since 02:14 UTC &lt;!here&gt;"},
		{"the channel", "channel", false, true,
			":speech_balloon: <!channel> no update since 02:14 UTC &lt;!here&gt;", "<!channel> no update since 02:14 UTC &lt;!here&gt;"},
		{"a user ID", "U024BE7LH", false, true,
			":speech_balloon: <@U024BE7LH> no update since 02:14 UTC &lt;!here&gt;", "<@U024BE7LH> no update since 02:14 UTC &lt;!here&gt;"},
		{"an enterprise user ID", "W0123456789", false, true,
			":speech_balloon: <@W0123456789> no update", "<@W0123456789> no update"},
		{"a name", "maria", false, true,
			":speech_balloon: @maria no update", "@maria no update"},
		{"a name with its @", "@maria", false, true,
			":speech_balloon: @maria no update", "@maria no update"},
		{"too short for an ID", "U1234567", false, true,
			":speech_balloon: @U1234567 no update", "@U1234567 no update"},
		{"lower case is no ID", "u024be7lh", false, true,
			":speech_balloon: @u024be7lh no update", "@u024be7lh no update"},
		{"Channel is a name", "Channel", false, true,
			":speech_balloon: @Channel no update", "@Channel no update"},
		{"a name cannot ping", "<!here> <@U024BE7LH>", false, true,
			":speech_balloon: @&lt;!here&gt; &lt;@U024BE7LH&gt; no update", "@&lt;!here&gt; &lt;@U024BE7LH&gt; no update"},
		{"a drill", "channel", true, true,
			"[DRILL] :speech_balloon: <!channel> no update", "[DRILL] <!channel> no update"},
		{"no thread", "channel", false, false,
			"*[S1] INC-4: High error rate on checkout*\n:speech_balloon: <!channel> no update",
			"<!channel> [S1] INC-4: High error rate on checkout: no update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			inc := incident()
			inc.Drill = tt.drill
			root := f.notify(t, opened(inc, "#ops"))
			m := integrations.Message{Event: "reminder", Text: "no update", Target: "#ops", Mention: tt.mention, Incident: inc}
			if strings.Contains(tt.wantText, "02:14") {
				m.Text = "no update since 02:14 UTC <!here>"
			}
			if tt.thread {
				m.Target, m.Thread = root.Channel, root.Thread
			}
			f.notify(t, m)
			posts := f.srv.Posts()
			last := posts[len(posts)-1]
			_, md := texts(t, last.Blocks)
			if len(md) == 0 || md[0] != tt.wantHead {
				t.Errorf("reply reads %q, want %q", md, tt.wantHead)
			}
			if last.Text != tt.wantText {
				t.Errorf("fallback text = %q, want %q", last.Text, tt.wantText)
			}
		})
	}
}

// A mention never pushes the fallback text over its limit.
func TestReplyMentionFallbackStaysWithinLimit(t *testing.T) {
	f := newFixture(t)
	root := f.notify(t, opened(incident(), "#ops"))
	f.notify(t, integrations.Message{Event: "reminder", Text: strings.Repeat("<", 4000), Mention: "channel",
		Target: root.Channel, Thread: root.Thread, Incident: incident()})
	posts := f.srv.Posts()
	text := posts[len(posts)-1].Text
	if n := len([]rune(text)); n > 3000 {
		t.Errorf("fallback text is %d characters, over 3000", n)
	}
	if !strings.HasPrefix(text, "<!channel> &lt;") || !strings.HasSuffix(text, "…") || strings.HasSuffix(text, "&lt…") {
		t.Errorf("fallback text is %q…%q", text[:20], text[len(text)-20:])
	}
}

func TestBlocksStayWithinSlackLimits(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	inc.Title = strings.Repeat("very long title ", 40)
	inc.Description = strings.Repeat("<&> ", 2000)
	inc.Summary = strings.Repeat("s", 5000)
	inc.Team = strings.Repeat("t", 3000)
	for i := range 200 {
		inc.Labels[fmt.Sprintf("label%03d", i)] = strings.Repeat("v", 500)
	}
	inc.Labels["alertname"] = strings.Repeat("<", 3000)
	// The fake refuses anything over Slack's limits (invalid_blocks,
	// msg_too_long), so getting through is the test.
	root := f.notify(t, opened(inc, "#ops"))
	f.notify(t, integrations.Message{Event: integrations.EventNote, Text: strings.Repeat("&", 5000), Target: root.Channel,
		Thread: root.Thread, Incident: inc})
	f.notify(t, integrations.Message{Event: integrations.EventRootUpdate, Target: root.Channel, Thread: root.Thread,
		Incident: resolved(inc)})
	plain, _ := texts(t, f.srv.Messages(f.ops)[0].Blocks)
	if n := len([]rune(plain[0])); n != 150 || !strings.HasSuffix(plain[0], "…") {
		t.Errorf("header is %d characters ending %q, want 150 ending with …", n, plain[0][len(plain[0])-5:])
	}
}

func TestConcurrentRoots(t *testing.T) {
	f := newFixture(t)
	const n = 20
	receipts := make([]integrations.Receipt, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			inc := incident()
			inc.ID = fmt.Sprintf("INC-%d", i)
			r, err := f.n.Notify(context.Background(), opened(inc, f.ops))
			if err != nil {
				t.Errorf("Notify %s: %v", inc.ID, err)
			}
			receipts[i] = r
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range receipts {
		if seen[r.Thread] {
			t.Errorf("ts %s handed out twice", r.Thread)
		}
		seen[r.Thread] = true
	}
	if got := len(f.srv.Messages(f.ops)); got != n {
		t.Errorf("channel holds %d roots, want %d", got, n)
	}
}

// answering is a server that answers every call the same way.
func answering(t *testing.T, status int, header http.Header, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/"
}

type errorCase struct {
	name string
	// run delivers one message that fails, with tok as the token.
	run       func(t *testing.T, tok string) error
	retry     bool
	after     time.Duration
	errSubstr string
}

func errorCases() []errorCase {
	// onFake delivers msg (its Thread "?" meaning the root just posted)
	// after prepare has set the fake up.
	onFake := func(prepare func(*slacktest.Server), msg func(root integrations.Receipt) integrations.Message) func(*testing.T, string) error {
		return func(t *testing.T, tok string) error {
			srv := slacktest.New(tok)
			t.Cleanup(srv.Close)
			srv.AddChannel("ops")
			n := newNotifier(t, tok, srv.URL())
			root, err := n.Notify(context.Background(), opened(incident(), "#ops"))
			if err != nil {
				t.Fatalf("root: %v", err)
			}
			if prepare != nil {
				prepare(srv)
			}
			_, err = n.Notify(context.Background(), msg(root))
			return err
		}
	}
	reply := func(root integrations.Receipt) integrations.Message {
		return integrations.Message{Event: integrations.EventNote, Text: "note", Target: root.Channel,
			Thread: root.Thread, Incident: incident()}
	}
	on := func(apiURL func(t *testing.T) string, m integrations.Message) func(*testing.T, string) error {
		return func(t *testing.T, tok string) error {
			n := newNotifier(t, tok, apiURL(t))
			_, err := n.Notify(context.Background(), m)
			return err
		}
	}
	root := opened(incident(), "#ops")
	return []errorCase{
		{name: "429 with Retry-After", run: onFake(func(s *slacktest.Server) { s.RateLimitNext(1, 7) }, reply),
			retry: true, after: 7 * time.Second, errSubstr: "rate limit"},
		{name: "per-channel rate", run: onFake(func(s *slacktest.Server) { s.StrictRate(time.Hour) }, reply),
			retry: true, after: time.Second},
		{name: "500", run: onFake(func(s *slacktest.Server) { s.FailNext(1, 500) }, reply),
			retry: true, errSubstr: "500 Internal Server Error"},
		{name: "503", run: onFake(func(s *slacktest.Server) { s.FailNext(2, 503) }, reply),
			retry: true, errSubstr: "503 Service Unavailable"},
		{name: "400", run: onFake(func(s *slacktest.Server) { s.FailNext(1, 400) }, reply),
			errSubstr: "400 Bad Request"},
		{name: "channel_not_found", run: onFake(nil, func(integrations.Receipt) integrations.Message {
			return opened(incident(), "#nope")
		}), errSubstr: "slack chat.postMessage to #nope: channel_not_found"},
		{name: "thread_not_found", run: onFake(nil, func(r integrations.Receipt) integrations.Message {
			m := reply(r)
			m.Thread = "1.000001"
			return m
		}), errSubstr: "thread_not_found"},
		{name: "message_not_found", run: onFake(nil, func(r integrations.Receipt) integrations.Message {
			return integrations.Message{Event: integrations.EventRootUpdate, Target: r.Channel, Thread: "1.000001",
				Incident: resolved(incident())}
		}), errSubstr: "slack chat.update in C000000001: message_not_found"},
		{name: "invalid_auth", run: func(t *testing.T, tok string) error {
			srv := slacktest.New("xoxb-the-right-one")
			t.Cleanup(srv.Close)
			srv.AddChannel("ops")
			_, err := newNotifier(t, tok, srv.URL()).Notify(context.Background(), root)
			return err
		}, errSubstr: "invalid_auth"},
		{name: "connection refused", run: func(t *testing.T, tok string) error {
			srv := slacktest.New(tok)
			srv.Close()
			_, err := newNotifier(t, tok, srv.URL()).Notify(context.Background(), root)
			return err
		}, retry: true, errSubstr: "connection refused"},
		{name: "timeout", run: func(t *testing.T, tok string) error {
			block := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-block:
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(block) })
			n := newNotifier(t, tok, srv.URL+"/api/")
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := n.Notify(ctx, root)
			return err
		}, retry: true, errSubstr: "deadline exceeded"},
		{name: "429 with an HTTP-date Retry-After", run: on(func(t *testing.T) string {
			at := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
			return answering(t, 429, http.Header{"Retry-After": {at}}, `{"ok":false,"error":"ratelimited"}`)
		}, root), retry: true, after: time.Hour, errSubstr: "HTTP 429"},
		{name: "429 without Retry-After", run: on(func(t *testing.T) string {
			return answering(t, 429, nil, `{"ok":false,"error":"ratelimited"}`)
		}, root), retry: true, errSubstr: "429"},
		{name: "503 with Retry-After", run: on(func(t *testing.T) string {
			return answering(t, 503, http.Header{"Retry-After": {"30"}}, "down")
		}, root), retry: true, after: 30 * time.Second, errSubstr: "503"},
		{name: "fatal_error", run: on(func(t *testing.T) string {
			return answering(t, 200, http.Header{"Content-Type": {"application/json"}}, `{"ok":false,"error":"fatal_error"}`)
		}, root), retry: true, errSubstr: "fatal_error"},
		{name: "msg_too_long", run: on(func(t *testing.T) string {
			return answering(t, 200, http.Header{"Content-Type": {"application/json"}}, `{"ok":false,"error":"msg_too_long"}`)
		}, root), errSubstr: "msg_too_long"},
		{name: "not_in_channel", run: on(func(t *testing.T) string {
			return answering(t, 200, http.Header{"Content-Type": {"application/json"}}, `{"ok":false,"error":"not_in_channel"}`)
		}, root), errSubstr: "not_in_channel"},
		{name: "a redirect is not followed", run: on(func(t *testing.T) string {
			return answering(t, 307, http.Header{"Location": {"https://elsewhere.example/api/chat.postMessage"}}, "")
		}, root), errSubstr: "307"},
		{name: "an answer that is not Slack's", run: on(func(t *testing.T) string {
			return answering(t, 200, http.Header{"Content-Type": {"text/html"}}, "<html>captive portal</html>")
		}, root), errSubstr: "not Slack API JSON"},
		{name: "a truncated answer", run: on(func(t *testing.T) string {
			return answering(t, 200, http.Header{"Content-Type": {"application/json"}}, `{"ok":true,"chann`)
		}, root), retry: true, errSubstr: "unexpected EOF"},
		{name: "no channel", run: on(func(t *testing.T) string { return "http://127.0.0.1:9/api/" },
			integrations.Message{Event: integrations.EventOpened, Incident: incident()}), errSubstr: "no channel"},
		{name: "root_update without ts", run: on(func(t *testing.T) string { return "http://127.0.0.1:9/api/" },
			integrations.Message{Event: integrations.EventRootUpdate, Target: "C1", Incident: incident()}), errSubstr: "no root message ts"},
	}
}

func TestErrorClassification(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t, token)
			if err == nil {
				t.Fatal("delivered, want an error")
			}
			var de *integrations.DeliveryError
			if !errors.As(err, &de) {
				t.Errorf("error %v (%T) is not classified", err, err)
			}
			retry, after := integrations.Retryable(err)
			if retry != tt.retry {
				t.Errorf("retryable = %v, want %v (error %v)", retry, tt.retry, err)
			}
			if tt.after == time.Hour { // an HTTP date: a few seconds pass before it is read
				if after < time.Hour-time.Minute || after > time.Hour {
					t.Errorf("retry after %v, want about 1h", after)
				}
			} else if after != tt.after {
				t.Errorf("retry after %v, want exactly %v", after, tt.after)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.errSubstr) {
				t.Errorf("error %q does not say %q", err, tt.errSubstr)
			}
		})
	}
}

func TestErrorsNeverContainToken(t *testing.T) {
	const secret = "xoxb-999-888-DoNotLeakMe0123456789"
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t, secret)
			if err == nil {
				t.Fatal("delivered, want an error")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", errors.Unwrap(err))} {
				if strings.Contains(s, "DoNotLeakMe") {
					t.Errorf("error leaks the token: %s", s)
				}
			}
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     slack.Config
		wantErr string
	}{
		{"bot token, default URL", slack.Config{Token: "xoxb-1"}, ""},
		{"user token, test URL", slack.Config{Token: "xoxp-1", APIURL: "http://127.0.0.1:8080/api/"}, ""},
		{"other token kinds are allowed", slack.Config{Token: "test-token"}, ""},
		{"empty token", slack.Config{}, "token is empty"},
		{"trailing newline", slack.Config{Token: "xoxb-1\n"}, "white space"},
		{"app-level token", slack.Config{Token: "xapp-1-A1"}, "app-level token"},
		{"webhook URL", slack.Config{Token: "https://hooks.slack.com/services/T/B/X"}, "incoming-webhook URL"},
		{"no trailing slash", slack.Config{Token: "xoxb-1", APIURL: "https://slack.com/api"}, `must end with "/"`},
		{"relative URL", slack.Config{Token: "xoxb-1", APIURL: "/api/"}, "absolute http or https"},
		{"ftp URL", slack.Config{Token: "xoxb-1", APIURL: "ftp://slack.com/api/"}, "absolute http or https"},
		{"credentials in URL", slack.Config{Token: "xoxb-1", APIURL: "https://u:p@slack.com/api/"}, "credentials"},
		{"query in URL", slack.Config{Token: "xoxb-1", APIURL: "https://slack.com/api/?token=x"}, "query"},
		{"every problem at once", slack.Config{APIURL: "slack.com"}, "token is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := slack.New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr == "" && n.Name() != "slack":
				t.Errorf("Name() = %q, want slack", n.Name())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one saying %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), tt.cfg.Token) && tt.cfg.Token != "" {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
	_, err := slack.New(slack.Config{APIURL: "slack.com"})
	if err == nil || !strings.Contains(err.Error(), "api_url") {
		t.Errorf("New reports %v, want both the token and the api_url", err)
	}
}

func TestGoldenBodies(t *testing.T) {
	drill := incident()
	drill.Drill, drill.Source = true, "drill"
	tests := []struct {
		name string
		msgs func(root integrations.Receipt) []integrations.Message // after the root of inc
		inc  integrations.Incident
	}{
		{name: "root", inc: incident()},
		{name: "root_drill", inc: drill},
		{name: "root_resolved", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			return []integrations.Message{{Event: integrations.EventRootUpdate, Text: "resolved by maria",
				Target: r.Channel, Thread: r.Thread, At: resolvedAt, Incident: resolved(incident())}}
		}},
		{name: "reply_mention", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			return []integrations.Message{{Event: "reminder", Mention: "channel",
				Text:   "no update since 02:14 UTC (03:14 CET); S1 updates are due every 1h and the next is due now: post one with POST https://responder.example.com/api/v1/incidents/INC-4/updates, even if nothing is new",
				Target: r.Channel, Thread: r.Thread, At: openedAt.Add(time.Hour), Incident: incident()}}
		}},
		{name: "root_state", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			inc := incident()
			eta := openedAt.Add(90 * time.Minute)
			inc.Status, inc.AcknowledgedBy, inc.RecoveryLead, inc.CommsLead, inc.ETA = "acknowledged", "maria", "maria", "dev", &eta
			inc.Paged = []string{"team:sre-oncall through opsgenie: paged at 02:15 UTC", "user:lead@example.com through opsgenie: page queued"}
			inc.FiringAlerts = []string{"HighErrorRate: 5xx above 5%", "HighLatency on checkout-1"}
			return []integrations.Message{{Event: integrations.EventRootUpdate, Text: "roles: recovery maria, comms dev",
				Target: r.Channel, Thread: r.Thread, At: openedAt.Add(10 * time.Minute), Incident: inc}}
		}},
		{name: "escalated", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			inc := incident()
			inc.SlackChannel, inc.SlackTS = r.Channel, r.Thread
			return []integrations.Message{{Event: integrations.EventEscalated, Text: "severity raised from S2 to S1: every checkout fails (set by maria)",
				Target: "#ops", At: openedAt.Add(20 * time.Minute), Incident: inc}}
		}},
		{name: "customer", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			return []integrations.Message{{Event: integrations.EventCustomer, Text: "Expected recovery: 2025-03-01 03:44 UTC: High error rate on checkout",
				Target: "#ops", At: openedAt.Add(30 * time.Minute), Incident: incident()}}
		}},
		{name: "reply_collapsed", inc: incident(), msgs: func(r integrations.Receipt) []integrations.Message {
			lines := make([]string, 23)
			for i := range lines {
				lines[i] = fmt.Sprintf("HighLatency service=checkout instance=web-%02d:9090", i+1)
			}
			return []integrations.Message{{Event: integrations.EventAlertJoined, Text: "23 more alerts joined:",
				Lines: lines, Target: r.Channel, Thread: r.Thread, At: openedAt.Add(90 * time.Second), Incident: incident()}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			root := f.notify(t, opened(tt.inc, "#ops"))
			if tt.msgs != nil {
				for _, m := range tt.msgs(root) {
					f.notify(t, m)
				}
			}
			posts := f.srv.Posts()
			last := posts[len(posts)-1]
			// A permalink holds the thread's ts, which the fake takes from
			// the clock: the golden file holds "pTS" instead.
			blocks := json.RawMessage(permalinkTS.ReplaceAll(last.Blocks, []byte("/pTS")))
			golden(t, tt.name, map[string]any{"text": last.Text, "blocks": blocks})
		})
	}
}

// golden compares got with testdata/name.golden.json by meaning (both
// decoded), or rewrites the file under -update.
var permalinkTS = regexp.MustCompile(`/p[0-9]{16}`)

func golden(t *testing.T, name string, got any) {
	t.Helper()
	raw, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var canonical any // decoded so that the file shows "<" rather than "\u003c"
	if err := json.Unmarshal(raw, &canonical); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(canonical); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(buf.Bytes(), &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("body differs from %s (run go test -update to accept):\ngot:\n%s\nwant:\n%s", path, buf.Bytes(), want)
	}
}

// Every message carries its delivery key as metadata, and Find finds a
// root by it in the channel (given by name: its ID is looked up) and a reply
// in its thread, with the receipt Notify gave; a message never posted is
// not found.
func TestFindPostedMessage(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	root := opened(inc, "#ops")
	root.Key = "INC-4/slack/1"
	got := f.notify(t, root)
	reply := integrations.Message{Key: "INC-4/slack/2", Event: integrations.EventAcknowledged, Text: "acknowledged by maria",
		Target: got.Channel, Thread: got.Thread, At: openedAt, Incident: inc}
	f.notify(t, reply)
	// Two alert_joined deliveries collapsed into one reply: each is found.
	joined := integrations.Message{Key: "INC-4/slack/5", Covers: []string{"INC-4/slack/6"}, Event: integrations.EventAlertJoined,
		Lines: []string{"HighLatency joined", "DiskFull joined"}, Target: got.Channel, Thread: got.Thread, At: openedAt, Incident: inc}
	f.notify(t, joined)
	covered := joined
	covered.Key, covered.Covers = "INC-4/slack/6", nil

	msgs := f.srv.Messages(f.ops)
	if len(msgs) != 1 || msgs[0].Metadata == nil || msgs[0].Metadata.EventType != slack.MetadataEventType ||
		msgs[0].Metadata.EventPayload["key"] != "INC-4/slack/1" || msgs[0].Metadata.EventPayload["incident"] != "INC-4" {
		t.Fatalf("root metadata: %+v", msgs)
	}
	if md := msgs[0].Replies[0].Metadata; md == nil || md.EventPayload["key"] != "INC-4/slack/2" {
		t.Fatalf("reply metadata: %+v", md)
	}

	// A fresh notifier knows no channel ID: it looks #ops up.
	fresh := newNotifier(t, token, f.srv.URL())
	for _, tc := range []struct {
		name  string
		m     integrations.Message
		found bool
		want  integrations.Receipt
	}{
		{"root", root, true, got},
		{"reply", reply, true, integrations.Receipt{Channel: got.Channel, Thread: got.Thread}},
		{"root never posted", func() integrations.Message { m := root; m.Key = "INC-4/slack/9"; return m }(), false, integrations.Receipt{}},
		{"reply never posted", func() integrations.Message { m := reply; m.Key = "INC-4/slack/8"; return m }(), false, integrations.Receipt{}},
		{"collapsed reply, by its own key", joined, true, integrations.Receipt{Channel: got.Channel, Thread: got.Thread}},
		{"collapsed reply, by a key it covers", covered, true, integrations.Receipt{Channel: got.Channel, Thread: got.Thread}},
		{"root update is never looked for", integrations.Message{Key: "INC-4/slack/3", Event: integrations.EventRootUpdate,
			Target: got.Channel, Thread: got.Thread, Incident: inc}, false, integrations.Receipt{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok, err := fresh.Find(context.Background(), tc.m)
			if err != nil || ok != tc.found || r != tc.want {
				t.Errorf("Find = %+v, %v, %v; want %+v, %v, nil", r, ok, err, tc.want, tc.found)
			}
		})
	}
	if n := len(f.srv.Posts()); n != 3 {
		t.Errorf("%d posts after the lookups, want still 3", n)
	}
}

// Find pages through a busy channel, and a message older than its look-back
// is not searched for.
func TestFindPagesThroughHistory(t *testing.T) {
	f := newFixture(t)
	inc := incident()
	root := opened(inc, f.ops)
	root.Key = "INC-4/slack/1"
	root.At = time.Now()
	f.notify(t, root)
	for i := range 450 { // newer messages push the root to the third page
		m := opened(inc, f.ops)
		m.Key = fmt.Sprintf("INC-5/slack/%d", i)
		f.notify(t, m)
	}
	if _, ok, err := f.n.Find(context.Background(), root); !ok || err != nil {
		t.Errorf("Find = %v, %v; want found", ok, err)
	}
	late := root
	late.At = time.Now().Add(time.Hour) // queued an hour after the post: out of the look-back
	if _, ok, err := f.n.Find(context.Background(), late); ok || err != nil {
		t.Errorf("Find outside the look-back = %v, %v; want not found", ok, err)
	}
}

// Without the history scope Slack refuses the lookup: Find says so with a
// permanent error (the caller then posts again); an outage is temporary.
func TestFindErrors(t *testing.T) {
	f := newFixture(t)
	m := opened(incident(), f.ops)
	f.srv.FailNext(1, http.StatusServiceUnavailable)
	_, _, err := f.n.Find(context.Background(), m)
	if retry, _ := integrations.Retryable(err); err == nil || !retry {
		t.Errorf("during an outage: %v, want a temporary error", err)
	}
	f.srv.WithoutHistoryScope()
	_, ok, err := f.n.Find(context.Background(), m)
	if retry, _ := integrations.Retryable(err); ok || err == nil || retry || !strings.Contains(err.Error(), "missing_scope") {
		t.Errorf("without the scope: %v, %v; want a permanent missing_scope error", ok, err)
	}
	if _, _, err := f.n.Find(context.Background(), opened(incident(), "#nowhere")); err == nil {
		t.Errorf("unknown channel name: no error")
	}
	if strings.Contains(fmt.Sprint(err), token) {
		t.Errorf("error shows the token")
	}
}
