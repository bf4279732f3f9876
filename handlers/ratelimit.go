package handlers

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/responder-sre/responder/integrations"
)

// tokenLimiter is one token's rate limit: a token bucket refilled at rate
// per second that holds burst requests. It runs on the server's clock, so
// that tests control time.
type tokenLimiter struct {
	rate  float64
	burst int
	lim   *rate.Limiter
}

// newTokenLimiter returns nil (no limit) for a rate of 0 or less.
func newTokenLimiter(perSecond float64, burst int) *tokenLimiter {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &tokenLimiter{rate: perSecond, burst: burst, lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// take spends one request at now. When the bucket is empty it spends
// nothing and says how long until a request would be allowed.
func (l *tokenLimiter) take(now time.Time) (ok bool, wait time.Duration) {
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limit answers 429 when the token named name is over its rate, with
// Retry-After in whole seconds (rounded up) and an error naming the token,
// never its value.
func (s *Server) limit(c echo.Context, t *hashedToken) error {
	if t.limiter == nil {
		return nil
	}
	ok, wait := t.limiter.take(s.now())
	if ok {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return errorf(http.StatusTooManyRequests, "token %q is over its rate limit of %s requests per second (burst %d): retry after %ds",
		t.name, strconv.FormatFloat(t.limiter.rate, 'f', -1, 64), t.limiter.burst, secs)
}

// credentialParams are query parameters that carry credentials by
// convention. A URL ends up in proxy logs, shell history and browser
// history, so a request that puts one there is refused, whatever else it
// holds, and the value is never logged (the request log has the path only).
var credentialParams = []string{"token", "access_token", "api_key", "apikey", "api-key", "key", "auth", "authorization", "bearer", "password", "secret"}

// refuseQueryCredentials refuses a request whose query string carries a
// credential parameter, before any handler or auth runs.
func (s *Server) refuseQueryCredentials(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if name := queryCredential(c.Request().URL.RawQuery); name != "" {
			return badRequest("the query string carries %q: credentials are refused in URLs (they end up in logs); send Authorization: Bearer <token> instead", name)
		}
		return next(c)
	}
}

// queryCredential returns the first credential parameter named in a raw
// query string, as the caller wrote its name, or "".
func queryCredential(raw string) string {
	if raw == "" {
		return ""
	}
	for part := range strings.SplitSeq(raw, "&") {
		for p := range strings.SplitSeq(part, ";") {
			name, _, _ := strings.Cut(p, "=")
			if dec, err := url.QueryUnescape(name); err == nil {
				name = dec
			}
			for _, c := range credentialParams {
				if strings.EqualFold(strings.TrimSpace(name), c) {
					return integrations.Shorten(name, 32)
				}
			}
		}
	}
	return ""
}
