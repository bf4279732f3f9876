package handlers

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzSessionCookie sends arbitrary session cookies to the list page: never
// a 5xx, and a cookie the server did not sign never opens the page. The
// seeds include one the server did sign, so the fuzzer starts from the
// accepted shape.
func FuzzSessionCookie(f *testing.F) {
	exp := strconv.FormatInt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), 10)
	name := base64.RawURLEncoding.EncodeToString([]byte("admin"))
	for _, s := range []string{"", "v1", "v1....", "v1.id." + exp + "." + name + ".sig", "v2.id." + exp + "." + name + ".sig",
		"v1.id.-1." + name + ".sig", "v1.id.99999999999999999999." + name + ".sig", "v1.id." + exp + ".!!!.sig", "v1.\x00.\xff.." + strings.Repeat("A", 100)} {
		f.Add(s, false)
	}
	f.Add("", true) // true: the server's own signature on the fuzzed id
	f.Fuzz(func(t *testing.T, value string, signed bool) {
		e := fuzzEnv(t, false)
		if signed {
			id := base64.RawURLEncoding.EncodeToString([]byte(value))
			value = "v1." + id + "." + exp + "." + name + "." + e.srv.sign("session", id, exp, "admin")
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", sessionCookie+"="+value)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("cookie %q: status %d", value, rec.Code)
		case signed && rec.Code != http.StatusOK:
			t.Fatalf("a cookie the server signed was refused: %d %s", rec.Code, rec.Body)
		case !signed && rec.Code == http.StatusOK:
			t.Fatalf("an unsigned cookie %q opened the page", value)
		}
	})
}

// FuzzWebFormFields: the text fields of the web forms that the pages parse
// themselves (labels, one name=value per line; an ETA in UTC) never panic,
// and what they accept is what was written.
func FuzzWebFormFields(f *testing.F) {
	for _, s := range []string{"env=production\nservice=checkout", "a = b\r\n\r\nc=d=e", "novalue", "=x", "", "2026-11-22 03:04",
		"2026-11-22T03:04", "2026-11-22T03:04:05+05:30", "2026-13-40 25:61", "\xff=\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lbls, err := parseLabels(text)
		if err == nil {
			for k, v := range lbls {
				if strings.ContainsAny(k+v, "\n") || k != strings.TrimSpace(k) || v != strings.TrimSpace(v) {
					t.Fatalf("labels %q: kept %q=%q", text, k, v)
				}
				if !strings.Contains(text, k) {
					t.Fatalf("labels %q: name %q was not written", text, k)
				}
			}
		} else if !strings.Contains(err.Error(), "labels: line") {
			t.Fatalf("labels %q: error %q does not name the line", text, err)
		}
		at, err := parseFormTime(text)
		switch {
		case err == nil && at.Location() != time.UTC:
			t.Fatalf("eta %q parsed in %v, want UTC", text, at.Location())
		case err != nil && !strings.Contains(err.Error(), "eta:"):
			t.Fatalf("eta %q: error %q does not name the field", text, err)
		}
	})
}
