package zoom

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// FuzzErrorDetail: Zoom's error answers are outside input that ends up in
// logs and on the incident. Whatever they hold, the detail drawn from them
// is valid UTF-8 and short.
func FuzzErrorDetail(f *testing.F) {
	f.Add([]byte(`{"code":124,"message":"Invalid access token."}`), "invalid_client", "bad secret")
	f.Add([]byte(`{"reason":"Invalid client_id or client_secret","error":"invalid_client"}`), "", "")
	f.Add([]byte("{\"message\":\"\xff\xfe\"}"), "\xff", "")
	f.Add([]byte(`[]`), "", "")
	f.Fuzz(func(t *testing.T, body []byte, code, desc string) {
		for _, d := range []string{apiDetail(body), tokenDetail(&oauth2.RetrieveError{Body: body, ErrorCode: code, ErrorDescription: desc})} {
			if !utf8.ValidString(d) {
				t.Fatalf("detail %q is not valid UTF-8", d)
			}
			if n := utf8.RuneCountInString(d); n > 340 {
				t.Fatalf("detail of %d characters", n)
			}
		}
	})
}
