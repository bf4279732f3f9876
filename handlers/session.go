package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Sessions of the web pages. A session cookie holds a random session id,
// the name of the token that logged in ("" before login) and an expiry,
// signed with HMAC-SHA256 under a key drawn at random when the process
// starts (a restart logs everyone out), or, for replicas on PostgreSQL,
// under one key kept in the database, with logouts recorded there too, so
// that a login works on whichever replica the load balancer picks and a
// logout on every one. The token itself never leaves the login form. The scopes are the token's, looked up by name on every
// request, so a token removed from the configuration stops working at the
// next restart.
const (
	sessionCookie = "responder_session"
	// sessionTTL is how long a login lasts: an incident shift.
	sessionTTL = 12 * time.Hour
	csrfField  = "csrf"
)

// session is a verified session cookie.
type session struct {
	id      string
	name    string // the token's name; "" when not logged in
	expires time.Time
	token   *hashedToken // nil when not logged in
}

// sessionKey draws the per-process key that signs session cookies.
func sessionKey() []byte {
	k := make([]byte, 32)
	// crypto/rand.Read never fails on the platforms Go supports (it
	// crashes the program instead).
	_, _ = rand.Read(k)
	return k
}

func (s *Server) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.sessionKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession starts a session for the token named name ("" for a visitor
// not logged in) and sets its cookie.
func (s *Server) newSession(c echo.Context, name string) *session {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sess := &session{id: base64.RawURLEncoding.EncodeToString(id), name: name, expires: s.now().Add(sessionTTL)}
	if name != "" {
		sess.token = s.tokenNamed(name)
	}
	exp := strconv.FormatInt(sess.expires.Unix(), 10)
	enc := base64.RawURLEncoding.EncodeToString([]byte(name))
	value := strings.Join([]string{"v1", sess.id, exp, enc, s.sign("session", sess.id, exp, name)}, ".")
	//nolint:gosec // G124: Secure is off only over plain HTTP from a loopback peer (see secureCookie)
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: value, Path: "/",
		Expires: sess.expires, MaxAge: int(sessionTTL.Seconds()),
		Secure: secureCookie(c.Request()), HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return sess
}

// revocations are the sessions logged out before they expired: a copy of
// the cookie must not outlive the logout. Kept in memory, like the key
// that signs the cookies (a restart ends every session anyway), each until
// its session would have expired.
type revocations struct {
	mu  sync.Mutex
	ids map[string]time.Time // session id -> when its cookie expires
}

func (r *revocations) revoke(sess *session, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]time.Time{}
	}
	for id, exp := range r.ids {
		if !now.Before(exp) {
			delete(r.ids, id)
		}
	}
	r.ids[sess.id] = sess.expires
}

func (r *revocations) revoked(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

// endSession ends the request's session on the server (a copied cookie
// stops working) and clears its cookie.
func (s *Server) endSession(c echo.Context) {
	if sess := sessionOf(c); sess != nil {
		s.revoked.revoke(sess, s.now())
		if s.sessions != nil {
			if err := s.sessions.RevokeSession(c.Request().Context(), sess.id, sess.expires); err != nil {
				// Refused here at least; the other replicas may still take
				// a copy of the cookie until it expires.
				s.log.Error().Err(err).Msg("log out: cannot record the logout for the other replicas")
			}
		}
	}
	//nolint:gosec // G124: as in newSession
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: secureCookie(c.Request()), HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// readSession is the request's session when its cookie is well signed,
// not expired, and (when logged in) names a configured token; else nil.
func (s *Server) readSession(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 5 || parts[0] != "v1" {
		return nil
	}
	name, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return nil
	}
	want := s.sign("session", parts[1], parts[2], string(name))
	if !hmac.Equal([]byte(want), []byte(parts[4])) {
		return nil
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return nil
	}
	if s.revoked.revoked(parts[1]) {
		return nil
	}
	if s.sessions != nil {
		// A logout on another replica; when it cannot be asked, the
		// session is refused: a logged-out cookie must not work.
		if out, err := s.sessions.SessionRevoked(r.Context(), parts[1]); err != nil || out {
			return nil
		}
	}
	sess := &session{id: parts[1], name: string(name), expires: time.Unix(exp, 0).UTC()}
	if sess.name != "" {
		if sess.token = s.tokenNamed(sess.name); sess.token == nil {
			return nil
		}
	}
	return sess
}

func (s *Server) tokenNamed(name string) *hashedToken {
	for i := range s.tokens {
		if s.tokens[i].name == name {
			return &s.tokens[i]
		}
	}
	return nil
}

// csrfToken is the anti-forgery token of a session: every form carries it
// and every POST must send it back.
func (s *Server) csrfToken(sess *session) string {
	return s.sign("csrf", sess.id)
}

// checkCSRF refuses a form post that does not carry its session's token.
// (That a browser says it came from another site is refused before, for
// every write: checkOrigin.)
func (s *Server) checkCSRF(c echo.Context, sess *session) error {
	got := c.Request().PostFormValue(csrfField)
	if sess == nil || got == "" || !hmac.Equal([]byte(got), []byte(s.csrfToken(sess))) {
		return errorf(http.StatusForbidden, "the form's security token is missing or does not match your session (expired, or the page is old): reload the page and send the form again")
	}
	return nil
}

// secureCookie reports whether a cookie set in answer to r must be Secure:
// always, except over plain HTTP from a loopback peer (the loopback
// default with no TLS), where a browser would otherwise drop it. A daemon
// reached from other hosts sits behind TLS.
func secureCookie(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return true
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
