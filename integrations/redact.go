package integrations

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// redacted replaces a secret wherever one is found.
const redacted = "<secret>"

// minRedacted is the shortest configured secret that is searched for: a
// shorter one would blank ordinary words.
const minRedacted = 6

// Redactor removes secrets from text that is about to leave the daemon (a
// log line, an API answer): the configured secrets, in every form they take
// in JSON, URLs and forms, and, in logs, credentials that a vendor or a
// client put into text it sent back (an error echoing the request).
type Redactor struct {
	values *strings.Replacer // nil: no secrets configured
}

// NewRedactor redacts the given secret values (tokens, keys, passwords).
func NewRedactor(secrets []string) *Redactor {
	var forms []string
	seen := map[string]bool{}
	for _, s := range secrets {
		// As it appears inside a JSON string: HTML-escaped (encoding/json,
		// echo) or not (zerolog).
		escaped, _ := json.Marshal(s)
		var plain bytes.Buffer
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		// And as it goes over the wire inside a credential: base64 alone
		// (SMTP AUTH LOGIN), or as a Basic id:secret or AUTH PLAIN
		// \x00user\x00password pair (see Secrets in configs), which a
		// vendor may echo.
		for _, form := range []string{s, strings.Trim(string(escaped), `"`), strings.Trim(strings.TrimSpace(plain.String()), `"`),
			url.QueryEscape(s), url.PathEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if len(form) >= minRedacted && !seen[form] {
				seen[form] = true
				forms = append(forms, form)
			}
		}
	}
	if len(forms) == 0 {
		return &Redactor{}
	}
	// The longest first, so that a secret holding another goes whole.
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, redacted)
	}
	return &Redactor{values: strings.NewReplacer(pairs...)}
}

// Values replaces the configured secrets in s.
func (r *Redactor) Values(s string) string {
	if r == nil || r.values == nil {
		return s
	}
	return r.values.Replace(s)
}

// Credentials found by their shape in text from outside: an Authorization
// value after its scheme, a credential parameter of a URL or form (plain or
// percent-encoded once), a credential field of JSON (plain or escaped).
var (
	credentialShapes = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(bearer|basic|geniekey)(\s+)[A-Za-z0-9._~+/\-]{6,}=*`),
		regexp.MustCompile(`(?i)\b(token\s+token=)("?)[^\s,"']{6,}`), // PagerDuty's REST API
		regexp.MustCompile(`\b(xox[a-z]|xapp)(-)[A-Za-z0-9-]{6,}`),   // Slack tokens
		regexp.MustCompile(`(?i)((?:access_|refresh_|id_)?token|api_?key|password|passwd|pwd|client_secret|secret)(=|%3D)[^&\s"'\\%]+`),
		regexp.MustCompile(`(?i)(\\?"(?:(?:access_|refresh_)?token|api_?key|password|client_secret|secret)\\?"\s*:\s*\\?")[^"\\]+`),
	}
	// credentialHints are lower-case pieces one of which every match above
	// holds; a line without any is not searched.
	credentialHints = []string{"bearer", "basic", "geniekey", "token", "apikey", "api_key", "pass", "pwd", "secret", "xox", "xapp"}
)

// Text replaces the configured secrets and anything shaped like a
// credential in s: what the log gets.
func (r *Redactor) Text(s string) string { return r.redact(s, credentialShapes) }

// Answer is Text without the URL and form parameters, for what people are
// shown (API answers, pages, post-mortems): a Zoom join link's passcode
// (pwd=) is the incident's, shown on purpose.
func (r *Redactor) Answer(s string) string {
	return r.redact(s, []*regexp.Regexp{credentialShapes[0], credentialShapes[1], credentialShapes[2], credentialShapes[4]})
}

func (r *Redactor) redact(s string, shapes []*regexp.Regexp) string {
	s = r.Values(s)
	lower := strings.ToLower(s)
	for _, h := range credentialHints {
		if !strings.Contains(lower, h) {
			continue
		}
		for _, re := range shapes {
			if re != credentialShapes[0] {
				s = re.ReplaceAllString(s, "${1}${2}"+redacted)
				continue
			}
			s = re.ReplaceAllStringFunc(s, func(m string) string {
				// "bearer token" is words; a credential has a digit or length.
				g := re.FindStringSubmatchIndex(m)
				if value := m[g[5]:]; len(value) < 20 && !strings.ContainsAny(value, "0123456789+/=") {
					return m
				}
				return m[:g[5]] + redacted
			})
		}
		return s
	}
	return s
}

// Writer is w with Text applied to every write. zerolog hands each event
// to Write whole, so a secret is never split across two writes.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &redactingWriter{w: w, r: r} }

type redactingWriter struct {
	w io.Writer
	r *Redactor
}

func (rw *redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.Text(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
