package email_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/email"
	"github.com/responder-sre/responder/integrations/email/smtptest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	openedAt   = time.Date(2025, 3, 4, 2, 10, 0, 0, time.UTC)
	resolvedAt = time.Date(2025, 3, 4, 3, 12, 30, 0, time.UTC)
)

const (
	alice    = "alice@example.com"
	bob      = "bob@example.com"
	password = "correct horse battery staple"
)

func incident() integrations.Incident {
	return integrations.Incident{
		ID:          "INC-4",
		Title:       "Checkout API error rate above 5%",
		Description: "The error rate of POST /api/checkout has been above 5% for 10 minutes.",
		Severity:    "S1",
		Status:      "open",
		Source:      "alertmanager",
		DedupKey:    `{}:{alertname="HighErrorRate"}`,
		Team:        "payments",
		Labels: map[string]string{
			"alertname": "HighErrorRate",
			"instance":  "checkout-7f9:8080",
			"service":   "checkout",
			"severity":  "critical",
		},
		RunbookURL:     "https://runbooks.example.com/checkout-errors",
		SourceURL:      "http://prometheus.example.com:9090/graph?g0.expr=rate%28http_errors_total%5B5m%5D%29&g0.tab=1",
		ZoomURL:        "https://zoom.us/j/123456789",
		URL:            "https://responder.example.com/incidents/INC-4",
		CustomerImpact: true,
		OutOfHours:     true,
		CreatedAt:      openedAt,
		AlertsFiring:   3,
		AlertsTotal:    4,
	}
}

func message(event string) integrations.Message {
	m := integrations.Message{
		Key:      "INC-4/" + event + "/email",
		Event:    event,
		Target:   alice + ", " + bob,
		At:       openedAt.Add(5 * time.Second),
		Incident: incident(),
	}
	switch event {
	case integrations.EventOpened:
		m.Text = "Incident opened from Alertmanager: 3 alerts firing"
	case integrations.EventAcknowledged:
		m.Text, m.By = "acknowledged by maria", "maria"
		m.Incident.Status, m.Incident.AcknowledgedBy = "acknowledged", "maria"
	case integrations.EventResolved:
		m.Text, m.By, m.At = "resolved by maria", "maria", resolvedAt
		r := resolvedAt
		m.Incident.Status, m.Incident.ResolvedAt, m.Incident.ResolvedBy = "resolved", &r, "maria"
		m.Incident.AcknowledgedBy = "maria"
		m.Incident.AlertsFiring = 0
		m.Incident.Summary = "A bad deploy of checkout 2.14 was rolled back."
	case integrations.EventAlertJoined:
		m.Text = "2 alerts joined"
		m.Lines = []string{"HighLatency on checkout-7f9:8080", "HighErrorRate on checkout-1a2:8080"}
	case integrations.EventCustomer:
		m.Text = "Some customers cannot pay; retries succeed after a few attempts."
		m.Target = "ce@example.com"
	}
	return m
}

// notifier is a Notifier for srv, plain text, with fast timeouts.
func notifier(t *testing.T, srv *smtptest.Server, edit ...func(*email.Config)) *email.Notifier {
	t.Helper()
	host, port := srv.Addr()
	cfg := email.Config{
		Host:      host,
		Port:      port,
		TLS:       email.TLSNone,
		From:      "Responder <responder@example.com>",
		HelloName: "responder.test",
		Timeout:   10 * time.Second,
	}
	for _, e := range edit {
		e(&cfg)
	}
	n, err := email.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

// sendOne delivers m and returns the one message the server got.
func sendOne(t *testing.T, srv *smtptest.Server, n *email.Notifier, m integrations.Message) smtptest.Message {
	t.Helper()
	before := len(srv.Messages())
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != before+1 {
		t.Fatalf("server has %d messages, want %d", len(msgs), before+1)
	}
	return msgs[len(msgs)-1]
}

func parts(t *testing.T, got smtptest.Message) (text, html string) {
	t.Helper()
	text, err := got.Text()
	if err != nil {
		t.Fatalf("text part: %v", err)
	}
	html, err = got.HTML()
	if err != nil {
		t.Fatalf("html part: %v", err)
	}
	return text, html
}

func header(t *testing.T, got smtptest.Message, name string) string {
	t.Helper()
	v, err := new(mime.WordDecoder).DecodeHeader(got.Header.Get(name))
	if err != nil {
		t.Fatalf("header %s: %v", name, err)
	}
	return v
}

// retryable returns how err was classified; it fails the test when err is
// not a classified delivery error.
func retryable(t *testing.T, err error) bool {
	t.Helper()
	var de *integrations.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not classified as Temporary or Permanent", err, err)
	}
	return de.Retryable
}

func TestNotifyContent(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	drill := message(integrations.EventOpened)
	drill.Incident.Drill, drill.Key = true, "INC-4/opened/drill"
	tests := []struct {
		name        string
		msg         integrations.Message
		subject     string
		text, html  []string // each must appear
		notText     []string // none may appear in the text part
		firstLineOK func(string) bool
	}{
		{
			name:    "opened",
			msg:     message(integrations.EventOpened),
			subject: "[S1] INC-4 opened: Checkout API error rate above 5%",
			text: []string{
				"[S1] INC-4 opened: Checkout API error rate above 5%",
				"Incident opened from Alertmanager: 3 alerts firing",
				"Severity: S1 (critical)", "Status: open", "Team: payments",
				"Customer impact: YES", "Out of hours: yes",
				"Opened: 2025-03-04T02:10:00Z", "This event: 2025-03-04T02:10:05Z",
				"Alerts: 3 firing of 4",
				"The error rate of POST /api/checkout has been above 5% for 10 minutes.",
				"alertname = HighErrorRate", "instance = checkout-7f9:8080",
				"Incident: https://responder.example.com/incidents/INC-4",
				"Runbook: https://runbooks.example.com/checkout-errors",
				"Source: http://prometheus.example.com:9090/graph?g0.expr=rate%28http_errors_total%5B5m%5D%29&g0.tab=1",
				"Zoom: https://zoom.us/j/123456789",
			},
			html: []string{
				"<h1", "[S1] INC-4 opened: Checkout API error rate above 5%",
				`<a href="https://runbooks.example.com/checkout-errors">`,
				`<a href="https://zoom.us/j/123456789">`,
				`<a href="https://responder.example.com/incidents/INC-4">`,
				`<a href="http://prometheus.example.com:9090/graph?g0.expr=rate%28http_errors_total%5B5m%5D%29&amp;g0.tab=1">`,
				"CUSTOMER IMPACT", "OUT OF HOURS", "2025-03-04T02:10:00Z",
			},
			notText: []string{"DRILL", "Resolved:"},
		},
		{
			name:    "acknowledged",
			msg:     message(integrations.EventAcknowledged),
			subject: "[S1] INC-4 acknowledged: Checkout API error rate above 5%",
			text:    []string{"acknowledged by maria", "Status: acknowledged", "Acknowledged by: maria"},
			html:    []string{"acknowledged by maria"},
		},
		{
			name:    "resolved",
			msg:     message(integrations.EventResolved),
			subject: "[S1] INC-4 resolved: Checkout API error rate above 5%",
			text: []string{
				"Status: resolved", "Resolved: 2025-03-04T03:12:30Z by maria, after 1h2m30s",
				"A bad deploy of checkout 2.14 was rolled back.", "This event: 2025-03-04T03:12:30Z",
			},
			html: []string{"2025-03-04T03:12:30Z by maria, after 1h2m30s"},
		},
		{
			name:    "alerts joined lists the collapsed lines",
			msg:     message(integrations.EventAlertJoined),
			subject: "[S1] INC-4 alerts joined: Checkout API error rate above 5%",
			text:    []string{"2 alerts joined", "- HighLatency on checkout-7f9:8080", "- HighErrorRate on checkout-1a2:8080"},
			html:    []string{"<li>HighLatency on checkout-7f9:8080</li>"},
		},
		{
			name:        "drill",
			msg:         drill,
			subject:     "[DRILL] [S1] INC-4 opened: Checkout API error rate above 5%",
			text:        []string{"This is a DRILL"},
			html:        []string{"[DRILL] [S1] INC-4 opened", "This is a DRILL"},
			firstLineOK: func(l string) bool { return strings.HasPrefix(l, "[DRILL] ") },
		},
		{
			name:    "customer engineering",
			msg:     message(integrations.EventCustomer),
			subject: "[Customer impact] INC-4 (critical): Checkout API error rate above 5%",
			text: []string{
				"Customers are affected by an incident",
				"Critical, the highest of four levels",
				"Service: checkout", "2025-03-04T02:10:00Z", "Ongoing.",
				"Updates are posted on the incident page: https://responder.example.com/incidents/INC-4",
				"The payments team handles the incident",
				"Some customers cannot pay",
			},
			html: []string{"Customers are affected by an incident", `<a href="https://responder.example.com/incidents/INC-4">`},
			// No label dump, no SRE links.
			notText: []string{"alertname", "HighErrorRate", "checkout-7f9", "Labels", "runbooks.example.com", "zoom.us", "prometheus"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sendOne(t, srv, n, tc.msg)
			types, err := got.MediaTypes()
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"multipart/alternative", "text/plain", "text/html"}; !slices.Equal(types, want) {
				t.Errorf("media types %v, want %v", types, want)
			}
			if s := header(t, got, "Subject"); s != tc.subject {
				t.Errorf("Subject %q, want %q", s, tc.subject)
			}
			text, html := parts(t, got)
			flat := normalise(text)
			for _, w := range tc.text {
				if !strings.Contains(flat, normalise(w)) {
					t.Errorf("text part lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notText {
				if strings.Contains(text, w) {
					t.Errorf("text part has %q:\n%s", w, text)
				}
			}
			for _, w := range tc.html {
				if !strings.Contains(html, w) {
					t.Errorf("html part lacks %q:\n%s", w, html)
				}
			}
			first, _, _ := strings.Cut(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
			if first != tc.subject {
				t.Errorf("first line %q, want the subject %q", first, tc.subject)
			}
			if tc.firstLineOK != nil && !tc.firstLineOK(first) {
				t.Errorf("first line %q", first)
			}
		})
	}
}

func TestCustomerMailDiffers(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	sre := message(integrations.EventOpened)
	ce := message(integrations.EventCustomer)
	ce.Text = sre.Text
	sreText, sreHTML := parts(t, sendOne(t, srv, n, sre))
	ceText, ceHTML := parts(t, sendOne(t, srv, n, ce))
	if normalise(sreText) == normalise(ceText) || normalise(sreHTML) == normalise(ceHTML) {
		t.Fatal("customer engineering got the SRE mail")
	}
	for k, v := range incident().Labels {
		for _, part := range []string{ceText, ceHTML} {
			if k != "service" && strings.Contains(part, k) {
				t.Errorf("customer mail shows label name %s", k)
			}
			// The service is shown on purpose ("Service: checkout"), and
			// "critical" is the severity in words.
			if k != "service" && k != "severity" && strings.Contains(part, v) {
				t.Errorf("customer mail shows label %s=%s", k, v)
			}
		}
	}
}

func TestHeaders(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	m := message(integrations.EventOpened)
	first := sendOne(t, srv, n, m)
	again := sendOne(t, srv, n, m) // a retry
	other := message(integrations.EventAcknowledged)
	ack := sendOne(t, srv, n, other)

	from, err := mail.ParseAddress(first.Header.Get("From"))
	if err != nil || from.Address != "responder@example.com" || from.Name != "Responder" {
		t.Errorf("From %q (%v)", first.Header.Get("From"), err)
	}
	to, err := first.Header.AddressList("To")
	if err != nil {
		t.Fatalf("To: %v", err)
	}
	var toAddrs []string
	for _, a := range to {
		toAddrs = append(toAddrs, a.Address)
	}
	if !slices.Equal(toAddrs, []string{alice, bob}) {
		t.Errorf("To %v, want %v", toAddrs, []string{alice, bob})
	}
	if !slices.Equal(first.To, []string{alice, bob}) || first.From != "responder@example.com" {
		t.Errorf("envelope from %q to %v", first.From, first.To)
	}

	id := first.Header.Get("Message-ID")
	if id == "" || id != again.Header.Get("Message-ID") {
		t.Errorf("Message-ID %q then %q on retry: want the same", id, again.Header.Get("Message-ID"))
	}
	if id == ack.Header.Get("Message-ID") {
		t.Errorf("two deliveries share Message-ID %q", id)
	}
	if want := "<INC-4/opened/email@responder.example.com>"; id != want {
		t.Errorf("Message-ID %q, want %q", id, want)
	}
	for _, got := range []smtptest.Message{first, ack} {
		for _, h := range []string{"References", "In-Reply-To"} {
			if v := got.Header.Get(h); v != "<INC-4@responder.example.com>" {
				t.Errorf("%s %q, want <INC-4@responder.example.com>", h, v)
			}
		}
		if v := got.Header.Get("X-Responder-Incident"); v != "INC-4" {
			t.Errorf("X-Responder-Incident %q", v)
		}
	}
	if v := ack.Header.Get("X-Responder-Event"); v != "acknowledged" {
		t.Errorf("X-Responder-Event %q", v)
	}
	if v := first.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if v := first.Header.Get("Importance"); !strings.EqualFold(v, "high") {
		t.Errorf("Importance %q for an S1, want high", v)
	}
	date, err := first.Header.Date()
	if err != nil || !date.Equal(m.At) {
		t.Errorf("Date %v (%v), want %v", date, err, m.At)
	}
}

func TestMessageIDIsValidAndDistinct(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	keys := []string{
		"INC-4/opened/email",
		"INC-4 opened:email",
		"INC-4 opened;email",
		"..leading and trailing..",
		"a..b",
		"ünïcödé",
		"a=b",
		"a=3Db",
		strings.Repeat("long-key/", 40) + "1",
		strings.Repeat("long-key/", 40) + "2",
		"",
	}
	seen := make(map[string]string)
	for _, key := range keys {
		m := message(integrations.EventOpened)
		m.Key = key
		m.Incident.URL = "https://[::1]:8443/incidents/INC-4"
		id := sendOne(t, srv, n, m).Header.Get("Message-ID")
		inner, ok := strings.CutPrefix(id, "<")
		inner, ok2 := strings.CutSuffix(inner, ">")
		// A msg-id of two dot-atoms is also an addr-spec.
		if _, err := mail.ParseAddress(inner); !ok || !ok2 || err != nil || len(id) > 200 {
			t.Errorf("key %q: Message-ID %q is not a valid msg-id (%v)", key, id, err)
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("keys %q and %q share Message-ID %s", prev, key, id)
		}
		seen[id] = key
	}
}

func TestRecipients(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		envelope []string
	}{
		{"one", alice, []string{alice}},
		{"list with names and spaces", " " + alice + ",Bob <" + bob + "> , ", []string{alice, bob}},
		{"duplicates once", alice + "," + strings.ToUpper(alice) + "," + bob, []string{alice, bob}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			m := message(integrations.EventOpened)
			m.Target = tc.target
			got := sendOne(t, srv, notifier(t, srv), m)
			if !slices.Equal(got.To, tc.envelope) {
				t.Errorf("RCPT TO %v, want %v", got.To, tc.envelope)
			}
		})
	}
}

func TestHTMLEscapesAlertText(t *testing.T) {
	srv := smtptest.Start(t)
	m := message(integrations.EventOpened)
	m.Incident.Labels["summary"] = `<script>alert("x")</script>`
	m.Incident.Title = `Disk <b>full</b> & "slow"`
	m.Incident.RunbookURL = "javascript:alert(1)"
	m.Text = `<img src=x onerror=alert(1)>`
	got := sendOne(t, srv, notifier(t, srv), m)
	text, html := parts(t, got)
	for _, bad := range []string{"<script>", "<b>full</b>", "<img", `href="javascript:`} {
		if strings.Contains(html, bad) {
			t.Errorf("html part carries %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "Disk &lt;b&gt;full&lt;/b&gt; &amp; &#34;slow&#34;", "&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("html part lacks %q:\n%s", want, html)
		}
	}
	if !strings.Contains(text, `<script>alert("x")</script>`) {
		t.Errorf("text part should show the label as it is:\n%s", text)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		server     []smtptest.Option
		user, pass string
		delivered  bool
		retry      bool
	}{
		{"right password", []smtptest.Option{smtptest.WithAuth("alice", password)}, "alice", password, true, false},
		{"wrong password", []smtptest.Option{smtptest.WithAuth("alice", password)}, "alice", "wrong-" + password, false, false},
		{"wrong user", []smtptest.Option{smtptest.WithAuth("alice", password)}, "mallory", password, false, false},
		{"no credentials where required", []smtptest.Option{smtptest.WithAuth("alice", password)}, "", "", false, false},
		{"credentials where AUTH is not offered", nil, "alice", password, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.server...)
			n := notifier(t, srv, func(c *email.Config) { c.Username, c.Password = tc.user, tc.pass })
			_, err := n.Notify(context.Background(), message(integrations.EventOpened))
			msgs := srv.Messages()
			if tc.delivered {
				if err != nil || len(msgs) != 1 || msgs[0].AuthUser != "alice" {
					t.Fatalf("err %v, %d messages, auth user %q", err, len(msgs), authUser(msgs))
				}
				return
			}
			if err == nil || len(msgs) != 0 {
				t.Fatalf("err %v, %d messages: want a refusal", err, len(msgs))
			}
			if retryable(t, err) != tc.retry {
				t.Errorf("retryable %v, want %v: %v", !tc.retry, tc.retry, err)
			}
			if tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func authUser(msgs []smtptest.Message) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[0].AuthUser
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("alice", password))
	srv.RejectNext(1, 550, "mailbox of user with password "+password+" is full")
	n := notifier(t, srv, func(c *email.Config) { c.Username, c.Password = "alice", password })
	_, err := n.Notify(context.Background(), message(integrations.EventOpened))
	if err == nil {
		t.Fatal("delivered despite the refusal")
	}
	if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "<secret>") {
		t.Errorf("error %q: want the password replaced by <secret>", err)
	}
}

func TestFailureClassification(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*smtptest.Server)
		retry     bool
		delivered []string // envelope recipients of the message that got through, if one did
		errHas    string
	}{
		{"451 at end of data", func(s *smtptest.Server) { s.RejectNext(1, 451, "Try again later") }, true, nil, "451"},
		{"421 at end of data", func(s *smtptest.Server) { s.RejectNext(1, 421, "Closing") }, true, nil, "421"},
		{"550 at end of data", func(s *smtptest.Server) { s.RejectNext(1, 550, "Message refused") }, false, nil, "550"},
		{"554 at end of data", func(s *smtptest.Server) { s.RejectNext(1, 554, "Transaction failed") }, false, nil, "554"},
		{"one unknown user of two", func(s *smtptest.Server) { s.RejectRecipient(bob, 550, "User unknown") }, false, []string{alice}, bob},
		{"every user unknown", func(s *smtptest.Server) {
			s.RejectRecipient(alice, 550, "User unknown")
			s.RejectRecipient(bob, 550, "User unknown")
		}, false, nil, "every recipient refused"},
		{"one user greylisted", func(s *smtptest.Server) { s.RejectRecipient(bob, 450, "Greylisted") }, true, nil, "450"},
		{"connection dropped after the body", func(s *smtptest.Server) { s.DropNext(1) }, true, nil, "end of DATA"},
		{"server down", func(s *smtptest.Server) { s.Close() }, true, nil, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			tc.setup(srv)
			_, err := notifier(t, srv).Notify(context.Background(), message(integrations.EventOpened))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if got := retryable(t, err); got != tc.retry {
				t.Errorf("retryable %v, want %v: %v", got, tc.retry, err)
			}
			if retry, _ := integrations.Retryable(err); retry != tc.retry {
				t.Errorf("integrations.Retryable %v, want %v", retry, tc.retry)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q lacks %q", err, tc.errHas)
			}
			msgs := srv.Messages()
			switch {
			case tc.delivered == nil && len(msgs) != 0:
				t.Errorf("%d messages got through, want none", len(msgs))
			case tc.delivered != nil && (len(msgs) != 1 || !slices.Equal(msgs[0].To, tc.delivered)):
				t.Errorf("messages %d, want one to %v", len(msgs), tc.delivered)
			}
		})
	}
}

func TestRetryAfterTemporaryRefusalDelivers(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RejectNext(1, 451, "Try again later")
	n := notifier(t, srv)
	m := message(integrations.EventOpened)
	if _, err := n.Notify(context.Background(), m); err == nil {
		t.Fatal("first attempt: want the 451")
	}
	got := sendOne(t, srv, n, m)
	if !slices.Equal(got.To, []string{alice, bob}) {
		t.Errorf("retry reached %v", got.To)
	}
}

func TestInvalidTarget(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	tests := []struct {
		name      string
		target    string
		delivered []string
	}{
		{"empty", " , ", nil},
		{"not an address", "on-call team", nil},
		{"one bad among good", alice + ", not an address", []string{alice}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Messages())
			m := message(integrations.EventOpened)
			m.Target = tc.target
			_, err := n.Notify(context.Background(), m)
			if err == nil || retryable(t, err) {
				t.Fatalf("err %v: want a permanent error", err)
			}
			t.Log(err)
			msgs := srv.Messages()[before:]
			if tc.delivered == nil && len(msgs) != 0 || tc.delivered != nil && (len(msgs) != 1 || !slices.Equal(msgs[0].To, tc.delivered)) {
				t.Errorf("got %d messages, want one to %v", len(msgs), tc.delivered)
			}
		})
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	// A server that accepts connections and never says a word.
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	addr := ln.Addr().(*net.TCPAddr)
	cfg := email.Config{Host: "127.0.0.1", Port: addr.Port, TLS: email.TLSNone, From: "responder@example.com"}

	t.Run("timeout", func(t *testing.T) {
		cfg := cfg
		cfg.Timeout = 200 * time.Millisecond
		n, err := email.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Notify(context.Background(), message(integrations.EventOpened))
		if err == nil || !retryable(t, err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v: want a temporary deadline error", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		n, err := email.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err = n.Notify(ctx, message(integrations.EventOpened))
		if err == nil || !retryable(t, err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v: want a temporary cancellation", err)
		}
	})
}

func TestTLS(t *testing.T) {
	tests := []struct {
		name    string
		server  []smtptest.Option
		tls     string
		trust   bool // give the client the server's certificate
		auth    bool
		wantTLS bool
		fail    bool // permanent failure expected
	}{
		{"mandatory over STARTTLS", []smtptest.Option{smtptest.WithSTARTTLS()}, email.TLSMandatory, true, false, true, false},
		{"mandatory with AUTH", []smtptest.Option{smtptest.WithSTARTTLS(), smtptest.WithAuth("alice", password)}, email.TLSMandatory, true, true, true, false},
		{"implicit", []smtptest.Option{smtptest.WithImplicitTLS()}, email.TLSImplicit, true, false, true, false},
		{"implicit with AUTH", []smtptest.Option{smtptest.WithImplicitTLS(), smtptest.WithAuth("alice", password)}, email.TLSImplicit, true, true, true, false},
		{"opportunistic with STARTTLS", []smtptest.Option{smtptest.WithSTARTTLS()}, email.TLSOpportunistic, true, false, true, false},
		{"opportunistic without STARTTLS", nil, email.TLSOpportunistic, false, false, false, false},
		{"none ignores STARTTLS", []smtptest.Option{smtptest.WithSTARTTLS()}, email.TLSNone, false, false, false, false},
		{"mandatory without STARTTLS", nil, email.TLSMandatory, false, false, false, true},
		{"mandatory with an untrusted certificate", []smtptest.Option{smtptest.WithSTARTTLS()}, email.TLSMandatory, false, false, false, true},
		{"implicit against a plain-text port", nil, email.TLSImplicit, false, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.server...)
			n := notifier(t, srv, func(c *email.Config) {
				c.TLS = tc.tls
				if tc.trust {
					c.TLSConfig = srv.ClientTLSConfig()
				}
				if tc.auth {
					c.Username, c.Password = "alice", password
				}
			})
			_, err := n.Notify(context.Background(), message(integrations.EventOpened))
			if tc.fail {
				if err == nil || retryable(t, err) {
					t.Fatalf("err %v: want a permanent failure", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].TLS != tc.wantTLS {
				t.Fatalf("%d messages, TLS %v, want one with TLS %v", len(msgs), len(msgs) == 1 && msgs[0].TLS, tc.wantTLS)
			}
			if tc.auth && msgs[0].AuthUser != "alice" {
				t.Errorf("auth user %q", msgs[0].AuthUser)
			}
		})
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("alice", password))
	n := notifier(t, srv, func(c *email.Config) { c.Username, c.Password = "alice", password })
	const count = 8
	errs := make(chan error, count)
	for i := range count {
		go func() {
			m := message(integrations.EventOpened)
			m.Key = fmt.Sprintf("INC-4/opened/%d", i)
			_, err := n.Notify(context.Background(), m)
			errs <- err
		}()
	}
	for range count {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Wait(ctx, count); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidation(t *testing.T) {
	ok := email.Config{Host: "smtp.example.com", From: "Responder <responder@example.com>"}
	tests := []struct {
		name string
		edit func(*email.Config)
		errs []string // each must appear; none means valid
	}{
		{"minimal", func(*email.Config) {}, nil},
		{"every policy", func(c *email.Config) { c.TLS = " Implicit " }, nil},
		{"auth", func(c *email.Config) { c.Username, c.Password = "alice", password }, nil},
		{"auth in plain text to loopback", func(c *email.Config) {
			c.Host, c.TLS, c.Username, c.Password = "127.0.0.1", email.TLSNone, "alice", password
		}, nil},
		{"IPv6 literal", func(c *email.Config) { c.Host = "::1" }, nil},
		{"no host", func(c *email.Config) { c.Host = " " }, []string{"host: required"}},
		{"host with port", func(c *email.Config) { c.Host = "smtp.example.com:587" }, []string{"host:", "includes a port"}},
		{"host is a URL", func(c *email.Config) { c.Host = "smtp://smtp.example.com" }, []string{"host:"}},
		{"port too big", func(c *email.Config) { c.Port = 70000 }, []string{"port: 70000"}},
		{"port negative", func(c *email.Config) { c.Port = -1 }, []string{"port: -1"}},
		{"unknown tls", func(c *email.Config) { c.TLS = "starttls" }, []string{`tls: "starttls"`}},
		{"no from", func(c *email.Config) { c.From = "" }, []string{"from: required"}},
		{"bad from", func(c *email.Config) { c.From = "responder at example.com" }, []string{"from:", "not an email address"}},
		{"username without password", func(c *email.Config) { c.Username = "alice" }, []string{"password: required"}},
		{"password without username", func(c *email.Config) { c.Password = password }, []string{"username: required"}},
		{"password in plain text", func(c *email.Config) {
			c.TLS, c.Username, c.Password = email.TLSNone, "alice", password
		}, []string{"tls: none would send the password"}},
		{"negative timeout", func(c *email.Config) { c.Timeout = -time.Second }, []string{"timeout:"}},
		{"hello name with a space", func(c *email.Config) { c.HelloName = "my host" }, []string{"hello_name:"}},
		{"every problem at once", func(c *email.Config) {
			*c = email.Config{Port: 0, TLS: "ssl", From: "nobody", Password: password}
		}, []string{"host:", "tls:", "from:", "username:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			n, err := email.New(cfg)
			if len(tc.errs) == 0 {
				if err != nil || n == nil {
					t.Fatalf("New: %v", err)
				}
				if n.Name() != "email" {
					t.Errorf("Name %q", n.Name())
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted the config")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"a@example.com", true},
		{"On call <oncall@example.com>", true},
		{"oncall", false},
		{"a@example.com, b@example.com", false},
	} {
		if err := email.CheckAddress(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckAddress(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}

func TestGolden(t *testing.T) {
	srv := smtptest.Start(t)
	n := notifier(t, srv)
	local := notifier(t, srv, func(c *email.Config) { c.Clock = integrations.Clock{Zone: time.FixedZone("CET", 3600)} })
	for _, tc := range []struct {
		name, event string
		n           *email.Notifier
	}{
		{"opened", integrations.EventOpened, n},
		{"resolved", integrations.EventResolved, n},
		{"customer", integrations.EventCustomer, n},
		{"resolved-local-time", integrations.EventResolved, local},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, html := parts(t, sendOne(t, srv, tc.n, message(tc.event)))
			golden(t, tc.name+".txt", text)
			golden(t, tc.name+".html", html)
		})
	}
}

// golden compares got with testdata/name by meaning: line endings, runs of
// white space and blank lines do not count. -update rewrites the file.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got = strings.ReplaceAll(got, "\r\n", "\n")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if g, w := normalise(got), normalise(string(want)); g != w {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, g, w)
	}
}

func normalise(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Customer engineering's own template writes their mail, plain text only,
// with its own subject; a drill is marked whatever the template says; the
// times carry the display zone's local time; a template that names a field
// the mail does not have is refused when the notifier is built.
func TestCustomerTemplate(t *testing.T) {
	srv := smtptest.Start(t)
	tmpl := `{{define "subject"}}[Customers] {{.ID}}: {{.Title}}{{end}}Affected: {{.Title}} ({{.SeverityPlain}}) since {{.Since}}.
News: {{.Update}}
{{if .Resolved}}Resolved: {{.Summary}}{{end}}See {{.URL}}`
	n := notifier(t, srv, func(c *email.Config) {
		c.CustomerTemplate = tmpl
		c.Clock = integrations.Clock{Zone: time.FixedZone("CET", 3600)}
	})
	m := message(integrations.EventCustomer)
	got := sendOne(t, srv, n, m)
	if s := header(t, got, "Subject"); s != "[Customers] INC-4: "+m.Incident.Title {
		t.Errorf("subject %q", s)
	}
	text, err := got.Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Affected: " + m.Incident.Title, "Critical, the highest of four levels",
		"since " + openedAt.UTC().Format(time.RFC3339) + " (" + openedAt.In(time.FixedZone("CET", 3600)).Format("15:04") + " CET)",
		"News: " + m.Text, "See " + m.Incident.URL} {
		if !strings.Contains(text, want) {
			t.Errorf("the mail lacks %q:\n%s", want, text)
		}
	}
	if html, err := got.HTML(); err == nil && html != "" {
		t.Errorf("a text/template mail has an HTML part:\n%s", html)
	}

	m.Incident.Drill = true
	got = sendOne(t, srv, n, m)
	text, _ = got.Text()
	if s := header(t, got, "Subject"); !strings.HasPrefix(s, "[DRILL] ") || !strings.Contains(text, "DRILL") {
		t.Errorf("drill: subject %q, text:\n%s", s, text)
	}

	for _, bad := range []string{`{{.Labels.instance}}`, `{{.Title`, "  \n", `{{template "missing"}}`} {
		_, err := email.New(email.Config{Host: "127.0.0.1", Port: 25, TLS: email.TLSNone, From: "r@example.com", CustomerTemplate: bad})
		if err == nil || !strings.Contains(err.Error(), "customer_engineering.template_file") {
			t.Errorf("template %q: %v", bad, err)
		}
		if err := email.CheckCustomerTemplate(bad); err == nil {
			t.Errorf("CheckCustomerTemplate(%q) passed", bad)
		}
	}
}

// The log shows what a mail would be: its subject and first lines, for
// the mails an incident's opening, resolution or customer impact sends.
func TestPreview(t *testing.T) {
	p, err := email.Preview(integrations.Clock{}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := p.Render(message(integrations.EventOpened))
	if !strings.HasPrefix(got, "Subject: [S1] INC-4 opened: ") || strings.Count(got, "\n") < 3 || strings.Count(got, "\n") > 8 {
		t.Errorf("preview of the opening:\n%s", got)
	}
	if got := p.Render(message(integrations.EventAcknowledged)); got != "" {
		t.Errorf("an acknowledgement is previewed as a mail:\n%s", got)
	}
	if _, err := email.Preview(integrations.Clock{}, "{{.Nope}}"); err == nil {
		t.Error("a bad customer template made a preview")
	}
}
