package outbox

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

func TestBackoffIsCappedWithJitter(t *testing.T) {
	d := New(Config{BackoffBase: time.Second, BackoffMax: 60 * time.Second}, nil, nil, zerolog.Nop(), nil, nil, nil)
	for attempt := 1; attempt <= 40; attempt++ {
		full := min(time.Second<<min(attempt-1, 30), 60*time.Second)
		for range 50 {
			got := d.backoff(attempt)
			if got > 60*time.Second {
				t.Fatalf("attempt %d: backoff %s over the 60s cap", attempt, got)
			}
			if got < full/2 || got > full {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", attempt, got, full/2, full)
			}
		}
	}
}

// benchDispatcher is a dispatcher holding pending intents across incidents
// (incidents × perIncident alert_joined intents, one Slack lane each), all
// in the channel #incidents, which a Retry-After holds far in the future:
// every pass looks at every lane and starts nothing.
func benchDispatcher(b *testing.B, incidents, perIncident int) *Dispatcher {
	b.Helper()
	d := New(Config{}, nil, nil, zerolog.Nop(), nil, nil, nil)
	now := d.now()
	d.hold[integrations.ChannelSlack+"\x00#incidents"] = now.Add(time.Hour)
	seq := uint64(0)
	for i := range perIncident {
		for n := range incidents {
			seq++
			d.add(&store.Intent{
				Seq: seq, IncidentID: fmt.Sprintf("INC-%d", n+1), Channel: integrations.ChannelSlack, Target: "#incidents",
				Event: integrations.EventAlertJoined, Text: fmt.Sprintf("alert %d joined", i), State: store.IntentPending,
				CreatedAt: now, NextAt: now,
			})
		}
	}
	d.lastSeq = seq
	return d
}

// BenchmarkDispatchPass measures one pass of the dispatcher over 50,000
// pending intents in 50 incidents (a storm held back by Slack's rate).
// AllHeadsDue makes every lane due before each pass, the most a pass can
// cost; NothingDue is the pass after a kick while every lane waits.
func BenchmarkDispatchPass(b *testing.B) {
	ctx := context.Background()
	b.Run("AllHeadsDue", func(b *testing.B) {
		d := benchDispatcher(b, 50, 1000)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range d.lanes {
				d.schedule(l, time.Time{})
			}
			d.startDue(ctx)
		}
	})
	b.Run("NothingDue", func(b *testing.B) {
		d := benchDispatcher(b, 50, 1000)
		d.startDue(ctx)
		b.ReportAllocs()
		for b.Loop() {
			d.startDue(ctx)
		}
	})
}

// A vendor's error that echoes what it was sent is kept without the
// secrets in it: the configured ones in every encoding, and anything
// shaped like a credential.
func TestErrorTextHoldsNoSecret(t *testing.T) {
	const token, secret = "xoxb-example-1234567890", "zoom-secret-0123456789"
	// The pairs as configs.Secrets lists them beside the secrets.
	d := New(Config{Redactor: integrations.NewRedactor([]string{token, secret, "zoom-client:" + secret, "\x00responder\x00" + secret})},
		nil, nil, zerolog.Nop(), nil, nil, nil)
	basic := base64.StdEncoding.EncodeToString([]byte("zoom-client:" + secret))
	plain := base64.StdEncoding.EncodeToString([]byte("\x00responder\x00" + secret))
	for _, echoed := range []string{
		"invalid_auth: you sent Authorization: Bearer " + token,
		"401: Authorization: Basic " + basic,
		`{"error":"bad key","key":"` + secret + `"}`,
		"535 5.7.8 AUTH PLAIN " + plain,
		"who is xoxp-example-9876543210?",
		"Token token=u+pd-rest-0123456789 rejected",
	} {
		got := d.errorText(errors.New(echoed))
		for _, leak := range []string{token, secret, basic, plain, "xoxp-example-9876543210", "u+pd-rest-0123456789"} { // example values
			if strings.Contains(got, leak) {
				t.Errorf("%q kept as %q", echoed, got)
			}
		}
	}
}

// A vendor's long error page is cut, on a character boundary, before it is
// kept on the intent and written into the timeline.
func TestErrorTextIsBounded(t *testing.T) {
	d := New(Config{}, nil, nil, zerolog.Nop(), nil, nil, nil)
	short := fmt.Errorf("slack chat.postMessage: HTTP 503")
	if got := d.errorText(short); got != short.Error() {
		t.Errorf("short error changed: %q", got)
	}
	long := fmt.Errorf("vendor said: %s", strings.Repeat("é", 2*maxErrorText))
	got := d.errorText(long)
	if len(got) > maxErrorText+len("… (2000 bytes)") || !strings.HasSuffix(got, fmt.Sprintf("… (%d bytes)", len(long.Error()))) || !utf8.ValidString(got) {
		t.Errorf("long error kept as %d bytes (valid UTF-8 %v): %.40q...", len(got), utf8.ValidString(got), got)
	}
}
