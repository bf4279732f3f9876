package opsgenie

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/responder-sre/responder/integrations"
)

// Dedup keys come from alert senders: any key makes an alias OpsGenie
// takes, the same every time, and a short key is its own alias.
func FuzzAlias(f *testing.F) {
	f.Add(`{}/{team="payments"}:{alertname="CheckoutDown"}`)
	f.Add(strings.Repeat("k", 513))
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		a := Alias(key)
		if len(a) > maxAlias {
			t.Errorf("alias of %d bytes", len(a))
		}
		if a != Alias(key) {
			t.Error("alias is not deterministic")
		}
		if len(key) <= maxAlias && a != key {
			t.Errorf("short key %q became %q", key, a)
		}
	})
}

// Incident text comes from alerts: whatever it holds, the alert's fields
// stay valid UTF-8 within OpsGenie's limits.
func FuzzAlertText(f *testing.F) {
	f.Add("S1", "Checkout is down", "payments", "alertname", "CheckoutDown", false)
	f.Add("S9", strings.Repeat("ß", 300), strings.Repeat("t", 600), "", "", true)
	f.Add("\xff", "\xfe\xff", "", "k", "\x00", true)
	f.Fuzz(func(t *testing.T, sev, title, team, lk, lv string, drill bool) {
		inc := integrations.Incident{ID: "INC-1", Severity: sev, Title: title, Team: team,
			Labels: map[string]string{lk: lv}, Drill: drill, Description: strings.Repeat(title, 100)}
		msg := message(inc)
		if n := utf8.RuneCountInString(msg); n > maxMessage || !utf8.ValidString(msg) {
			t.Errorf("message of %d characters, valid %v", n, utf8.ValidString(msg))
		}
		desc := truncate(description(inc), maxDescription)
		if utf8.RuneCountInString(desc) > maxDescription || !utf8.ValidString(desc) {
			t.Errorf("description of %d characters", utf8.RuneCountInString(desc))
		}
		for _, tag := range tags(inc) {
			if utf8.RuneCountInString(tag) > 50 {
				t.Errorf("tag %q", tag)
			}
		}
		if p := priority(sev); p != "" && !strings.HasPrefix(string(p), "P") {
			t.Errorf("priority %q", p)
		}
	})
}

func TestAlertAction(t *testing.T) {
	tests := []struct {
		path, id, action string
		ok               bool
	}{
		{"/v2/alerts/abc/close", "abc", "close", true},
		{"/v2/alerts/a/b/close", "a/b", "close", true},
		{"/v2/alerts/{}/{x=\"y\"}:{a=\"b\"}/responders", `{}/{x="y"}:{a="b"}`, "responders", true},
		{"/v2/alerts", "", "", false},
		{"/v2/alerts//close", "", "", false},
		{"/v2/alerts/abc/acknowledge", "abc", "acknowledge", true},
		{"/v2/alerts/abc/snooze", "", "", false},
	}
	for _, tt := range tests {
		id, action, ok := alertAction(tt.path)
		if id != tt.id || action != tt.action || ok != tt.ok {
			t.Errorf("alertAction(%q) = %q, %q, %v; want %q, %q, %v", tt.path, id, action, ok, tt.id, tt.action, tt.ok)
		}
	}
}
