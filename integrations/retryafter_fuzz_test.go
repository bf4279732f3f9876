package integrations

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzRetryAfter: a vendor's Retry-After header is outside input. Whatever
// it holds, the wait is never negative; whole seconds are taken as given,
// an HTTP date as the time until it.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", " 7 ", "-1", "1.5", "99999999999999999999", "9223372036854775807",
		now.Add(time.Minute).Format(http.TimeFormat), "Mon, 02 Jan 2006 15:04:05 GMT", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := RetryAfter(v, now)
		if d < 0 {
			t.Fatalf("RetryAfter(%q) = %v", v, d)
		}
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 && secs <= 1<<20 && d != time.Duration(secs)*time.Second {
			t.Fatalf("RetryAfter(%q) = %v, want %ds", v, d, secs)
		}
		// HTTPStatus reads the header against the real clock.
		retry, after := Retryable(HTTPStatus(http.StatusTooManyRequests, http.Header{"Retry-After": {v}}, "fuzz"))
		if !retry || after < 0 {
			t.Fatalf("a 429 with Retry-After %q: retry %v after %v", v, retry, after)
		}
	})
}
