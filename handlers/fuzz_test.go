package handlers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-sre/responder/store"
)

func seedFuzz(f *testing.F, prefix string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s*.json: %v", prefix, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
}

// checkRefusal: a refused body is always a 400 with a message, never a
// panic or a server error.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != 400 || ae.msg == "" {
		t.Fatalf("refusal %v is not a 400 with a message", err)
	}
}

func FuzzDecodeAlertmanager(f *testing.F) {
	seedFuzz(f, "am_")
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := decodeAlertmanager(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if msg.Version != "4" || strings.TrimSpace(msg.GroupKey) == "" || len(msg.Alerts) == 0 {
			t.Fatalf("accepted an invalid webhook: version %q groupKey %q alerts %d", msg.Version, msg.GroupKey, len(msg.Alerts))
		}
		for i, a := range msg.Alerts {
			if a.Fingerprint == "" || (a.Status != store.AlertFiring && a.Status != store.AlertResolved) || a.StartsAt.IsZero() || len(a.Labels) == 0 {
				t.Fatalf("accepted alert %d with fingerprint %q status %q start %v labels %d", i, a.Fingerprint, a.Status, a.StartsAt, len(a.Labels))
			}
		}
	})
}

func FuzzDecodeOpsGenie(f *testing.F) {
	seedFuzz(f, "og_")
	f.Add([]byte(`{"action":"Create","alert":{"alias":"a","message":"m","priority":3,"details":{"x":[1,{"y":null}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := decodeOpsGenie(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if msg.Action == "" || msg.Alert.Alias == "" {
			t.Fatalf("accepted action %q alias %q", msg.Action, msg.Alert.Alias)
		}
		if msg.Action == "Create" && strings.TrimSpace(msg.Alert.Message) == "" {
			t.Fatalf("accepted a Create without a message")
		}
		_ = msg.Alert.labels()
	})
}

// FuzzDeclare drives the people-facing endpoint with arbitrary bodies
// through the real server and a real store: any body gets 201 or a 4xx,
// never a 5xx, and a refused body writes nothing.
func FuzzDeclare(f *testing.F) {
	f.Add([]byte(`{"title":"x","severity":"S2","labels":{"env":"production"}}`))
	f.Add([]byte(`{"title":"x","severity":"S9"}`))
	f.Add([]byte(`{"title":5}`))
	f.Add([]byte("{\"title\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		before := e.snapshot()
		r := e.do("POST", "/api/v1/incidents", tokWrite, body)
		switch {
		case r.status == 201:
		case r.status >= 400 && r.status < 500:
			r.errorText(t)
			if e.snapshot() != before {
				t.Fatalf("refused body %q changed the store", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
	})
}
