package integrations

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	r := NewRedactor([]string{"tok-0123456789abcdef", "p@ss w/rd\"&x", "short", ""})
	tests := []struct {
		name, in, log, answer string
	}{
		{"configured token", "path /api/v1/incidents/tok-0123456789abcdef", "path /api/v1/incidents/<secret>", ""},
		{"token with a longer secret around it", "tok-0123456789abcdefXYZ", "<secret>XYZ", ""},
		{"JSON-escaped password", `{"error":"sent p@ss w/rd\"&x"}`, `{"error":"sent <secret>"}`, ""},
		{"query-escaped password", "body=p%40ss+w%2Frd%22%26x", "body=<secret>", ""},
		{"secrets under 6 bytes are words", "a short answer", "a short answer", ""},
		{"bearer credential from a vendor", "echo: Bearer eyJhbGciOiJIUzI1NiJ9.abc", "echo: Bearer <secret>", ""},
		{"basic credential", "Authorization: Basic em9vbTpzZWNyZXQ=", "Authorization: Basic <secret>", ""},
		{"geniekey", "GenieKey 4513b7ea-3b91-438f-b7e4-e3e54af9147c", "GenieKey <secret>", ""},
		{"the words bearer token stay", "missing bearer token: send one", "missing bearer token: send one", ""},
		{"form parameters", "token=xoxb-123&channel=C1&password=hunter22", "token=<secret>&channel=C1&password=<secret>", "token=xoxb-123&channel=C1&password=hunter22"},
		{"encoded parameter in an encoded body", "blocks=%3Fpwd%3DZOOM123%7CJoin", "blocks=%3Fpwd%3D<secret>%7CJoin", "blocks=%3Fpwd%3DZOOM123%7CJoin"},
		{"JSON field echoed", `last error: {\"access_token\":\"abc.def\"}`, `last error: {\"access_token\":\"<secret>\"}`, `last error: {\"access_token\":\"<secret>\"}`},
		{"nothing to redact", `{"level":"info","path":"/api/v1/incidents","status":200}`, `{"level":"info","path":"/api/v1/incidents","status":200}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Text(tc.in); got != tc.log {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.log)
			}
			want := tc.answer
			if want == "" {
				want = tc.log
			}
			if got := r.Answer(tc.in); got != want {
				t.Errorf("answer(%q) = %q, want %q", tc.in, got, want)
			}
		})
	}
	var b bytes.Buffer
	if _, err := r.Writer(&b).Write([]byte("x tok-0123456789abcdef y\n")); err != nil || b.String() != "x <secret> y\n" {
		t.Errorf("Writer wrote %q (%v)", b.String(), err)
	}
	if got := NewRedactor(nil).Text("token=abc123"); got != "token=<secret>" {
		t.Errorf("without secrets, shapes are still redacted: %q", got)
	}
}

// FuzzRedact: a configured secret never survives Text, whatever surrounds
// it, in any of the encodings it is searched in.
func FuzzRedact(f *testing.F) {
	f.Add("tok-0123456789", "Bearer tok-0123456789 and tok-0123456789x")
	f.Add("abcdef", "abcabcdefdef")
	f.Add("aaaaaa", "aaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, secret, text string) {
		if len(secret) < minRedacted || strings.Contains(redacted, secret) || strings.Trim(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
			return // tokens and keys are made of these
		}
		r := NewRedactor([]string{secret})
		for _, in := range []string{text, text + secret + text, secret + text} {
			if out := r.Text(in); strings.Contains(out, secret) {
				t.Fatalf("Text(%q) = %q keeps the secret", in, out)
			}
			if out := r.Answer(in); strings.Contains(out, secret) {
				t.Fatalf("answer(%q) = %q keeps the secret", in, out)
			}
		}
	})
}
