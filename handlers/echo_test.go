package handlers

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// echoVendor is a careless vendor on loopback: every request it gets is
// refused with an error that repeats what it was sent, credentials and
// all. Over HTTP (Slack, Zoom, OpsGenie) the error body holds the request's
// dump (Slack's as its JSON "error", a 200 as Slack answers; the others a
// 401 with "message" and "error"); over SMTP every command after EHLO gets
// a 535 repeating it (AUTH PLAIN and its base64 included).
func echoVendor(t *testing.T, smtp bool) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if smtp {
					echoSMTP(c)
				} else {
					echoHTTP(c)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func echoHTTP(c net.Conn) {
	rd := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(rd)
		if err != nil {
			return
		}
		dump, _ := httputil.DumpRequest(req, true)
		echo := "you sent: " + string(dump)
		status := http.StatusUnauthorized
		if strings.HasPrefix(req.URL.Path, "/api/") {
			status = http.StatusOK // Slack answers errors with 200 and ok:false
		}
		body, _ := json.Marshal(map[string]any{"ok": false, "error": echo, "message": echo, "took": 0, "requestId": "echo"})
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
	}
}

func echoSMTP(c net.Conn) {
	rd := bufio.NewReader(c)
	_, _ = fmt.Fprint(c, "220 echo.example ESMTP\r\n")
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(line)
		switch upper := strings.ToUpper(cmd); {
		case strings.HasPrefix(upper, "EHLO"), strings.HasPrefix(upper, "HELO"):
			_, _ = fmt.Fprint(c, "250-echo.example\r\n250 AUTH PLAIN LOGIN\r\n")
		case strings.HasPrefix(upper, "QUIT"):
			_, _ = fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			_, _ = fmt.Fprintf(c, "535 5.7.8 not accepted, you sent: %s\r\n", cmd)
		}
	}
}

// Vendors that echo every credential they were sent in their errors: no
// secret, in any encoding it travelled in, reaches the store, the API's
// JSON, the incident page, the post-mortem, the log or /metrics.
func TestVendorsEchoingCredentialsLeakNothing(t *testing.T) {
	var v vendors
	v.front = func(vendor, _ string) string { return echoVendor(t, vendor == "email") }
	pairs := []string{"\x00responder\x00" + smtpPassword, "responder:" + smtpPassword, "zoom-client:" + zoomSecret}
	e := newEnv(t, withVendors(t, &v, false), func(s envSetup) {
		// As configs.Secrets lists them: the secrets, and the pairs they
		// travel in.
		s.cfg.Secrets = append([]string{tokIngest, tokRead, tokWrite, tokAll, slackToken, ogKey, zoomSecret, smtpPassword}, pairs...)
		s.dispatch.MaxAge = 2 * time.Second // what keeps failing gives up soon
	})
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.flush()

	var leaks []string
	for _, secret := range append([]string{slackToken, ogKey, zoomSecret, smtpPassword}, pairs...) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
			leaks = append(leaks, enc.EncodeToString([]byte(secret)))
		}
		if !strings.HasPrefix(secret, "\x00") {
			leaks = append(leaks, secret)
		}
	}
	check := func(where, text string) {
		t.Helper()
		for _, leak := range leaks {
			if len(leak) >= 6 && strings.Contains(text, leak) {
				t.Errorf("%s holds a secret (%.8s…)", where, leak)
			}
		}
	}

	// The store itself: redacted where the text entered.
	var stored strings.Builder
	echoed := 0
	err := e.db.View(context.Background(), func(tx store.Tx) error {
		intents, err := tx.IncidentIntents(id)
		for _, in := range intents {
			stored.WriteString(in.LastError + "\n")
			if strings.Contains(in.LastError, "you sent") {
				echoed++
			}
		}
		if err != nil {
			return err
		}
		tl, err := tx.Timeline(id)
		for _, en := range tl {
			stored.WriteString(en.Text + "\n")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if echoed < 3 {
		t.Fatalf("%d delivery errors repeat what the vendor was sent, want Slack's, Zoom's, OpsGenie's and the SMTP server's:\n%s", echoed, stored.String())
	}
	check("the store", stored.String())
	check("the API's JSON", string(e.do(http.MethodGet, "/api/v1/incidents/"+id, tokRead, nil).body))
	b := newBrowser(e)
	b.login(tokAll)
	check("the incident page", b.get("/incidents/"+id).body)
	check("the post-mortem", string(e.getPostmortem(id).body))
	check("the log", v.logs.String())
	check("/metrics", string(e.do(http.MethodGet, "/metrics", "", nil).body))
}
