package handlers

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/integrations"
)

// A browser does what any web page it shows asks of a loopback daemon: it
// posts forms and sends fetches to http://127.0.0.1:9095, and a page whose
// own DNS name is made to point at 127.0.0.1 (DNS rebinding) even reads the
// answers. Without tokens (the quick start) nothing else stands in the
// way, so every request is checked for where it was sent (its Host) and
// every write for where it came from (Sec-Fetch-Site, Origin, Referer).
// Requests from programs (curl, Alertmanager, OpsGenie) send neither
// Origin nor Sec-Fetch-Site and go on as before.

// hostAllowed reports whether a request's Host names this daemon: a
// loopback address or localhost, a name or address configured
// (http.allowed_hosts, http.public_url's host, the listen address), or, when
// the daemon listens on every interface, any IP address. An address can
// never be an attacker's DNS name; a name must be configured.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() || s.cfg.AnyAddress {
			return true
		}
	} else if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761: always loopback, never from DNS
	}
	for _, allowed := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(strings.Trim(allowed, "[]"), "."), host) {
			return true
		}
	}
	return false
}

// checkHost refuses, with 421, a request sent to a name this daemon does
// not answer to. A request that carries a valid bearer token is let
// through whatever its Host: DNS rebinding rides on a browser's ambient
// credentials (none without tokens, the session cookie with them), and a
// page cannot know a token. So Alertmanager may reach the daemon under any
// name (a Kubernetes service's, say) without that name configured, and a
// webhook is never lost to a 421.
func (s *Server) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if host := c.Request().Host; !s.hostAllowed(host) && !s.validBearer(c.Request()) {
			return errorf(http.StatusMisdirectedRequest, "Host %q is not a name this daemon answers to: "+
				"use its address, or add the name to http.allowed_hosts", integrations.Shorten(host, 64))
		}
		return next(c)
	}
}

// safeMethod reports whether a request only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkOrigin refuses, with 403, a write that a browser says was made by
// another site: Sec-Fetch-Site other than same-origin or none (typed by the
// user), or an Origin (else a Referer) that is not this daemon. The API and
// the forms alike.
func (s *Server) checkOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if safeMethod(r.Method) {
			return next(c)
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return errorf(http.StatusForbidden, "write from another site refused (Sec-Fetch-Site: %s): "+
				"use this daemon's own pages, or a program such as curl", integrations.Shorten(site, 32))
		}
		from, header := r.Header.Get("Origin"), "Origin"
		if from == "" {
			from, header = r.Header.Get("Referer"), "Referer"
		}
		if from == "" {
			return next(c)
		}
		u, err := url.Parse(from)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, "write from another origin refused (%s: %s): "+
				"use this daemon's own pages, or a program such as curl", header, integrations.Shorten(from, 64))
		}
		return next(c)
	}
}

// validBearer reports whether r carries one of the configured tokens
// (never true when none is configured).
func (s *Server) validBearer(r *http.Request) bool {
	scheme, presented, _ := strings.Cut(strings.TrimSpace(r.Header.Get(echo.HeaderAuthorization)), " ")
	return len(s.tokens) > 0 && strings.EqualFold(scheme, "Bearer") && s.findToken(strings.TrimSpace(presented)) != nil
}
