package smtptest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/email/smtptest"
)

// send delivers raw with the standard library's client.
func send(t *testing.T, srv *smtptest.Server, auth smtp.Auth, to []string, raw string) error {
	t.Helper()
	host, port := srv.Addr()
	return smtp.SendMail(net.JoinHostPort(host, strconv.Itoa(port)), auth, "sender@example.com", to, []byte(raw))
}

const alternative = "From: sender@example.com\r\n" +
	"To: a@example.com\r\n" +
	"Subject: hello\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=C3=A9 soft=\r\n" +
	"break\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+aGk8L3A+\r\n" +
	"--b1--\r\n"

func TestRecordsAndDecodes(t *testing.T) {
	srv := smtptest.Start(t)
	if err := send(t, srv, nil, []string{"a@example.com", "b@example.com"}, alternative); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "sender@example.com" || !slices.Equal(m.To, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("envelope %q -> %v", m.From, m.To)
	}
	if m.Header.Get("Subject") != "hello" || m.TLS || m.AuthUser != "" {
		t.Errorf("subject %q, TLS %v, auth %q", m.Header.Get("Subject"), m.TLS, m.AuthUser)
	}
	types, err := m.MediaTypes()
	if err != nil || !slices.Equal(types, []string{"multipart/alternative", "text/plain", "text/html"}) {
		t.Errorf("media types %v (%v)", types, err)
	}
	for _, tc := range []struct {
		get  func() (string, error)
		want string
	}{
		{m.Text, "café softbreak"},
		{m.HTML, "<p>hi</p>"},
	} {
		if got, err := tc.get(); err != nil || got != tc.want {
			t.Errorf("part %q (%v), want %q", got, err, tc.want)
		}
	}
	if _, err := m.Part("image/png"); err == nil {
		t.Error("found a part that is not there")
	}
}

func TestFailureInjection(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("alice", "secret"))
	auth := smtp.PlainAuth("", "alice", "secret", "127.0.0.1")
	code := func(err error) int {
		var tpe *textproto.Error
		if errors.As(err, &tpe) {
			return tpe.Code
		}
		return 0
	}

	if err := send(t, srv, smtp.PlainAuth("", "alice", "wrong", "127.0.0.1"), []string{"a@example.com"}, alternative); code(err) != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	srv.RejectNext(2, 451, "later")
	for i := range 2 {
		if err := send(t, srv, auth, []string{"a@example.com"}, alternative); code(err) != 451 {
			t.Errorf("attempt %d: %v, want 451", i, err)
		}
	}
	srv.RejectRecipient("B@example.com", 550, "unknown")
	if err := send(t, srv, auth, []string{"b@example.com"}, alternative); code(err) != 550 {
		t.Errorf("refused recipient: %v, want 550", err)
	}
	srv.RejectRecipient("b@example.com", 0, "")
	srv.DropNext(1)
	if err := send(t, srv, auth, []string{"a@example.com"}, alternative); err == nil || code(err) != 0 {
		t.Errorf("dropped: %v, want a connection error", err)
	}
	if err := send(t, srv, auth, []string{"b@example.com"}, alternative); err != nil {
		t.Errorf("after the failures: %v", err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].AuthUser != "alice" {
		t.Errorf("recorded %d messages, want only the last", len(msgs))
	}
}

func TestRejectNextPanicsOnANonErrorCode(t *testing.T) {
	srv := smtptest.Start(t)
	for _, c := range []int{0, 250, 600} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("RejectNext(1, %d, ...) did not panic", c)
				}
			}()
			srv.RejectNext(1, c, "x")
		})
	}
}

func TestWait(t *testing.T) {
	srv := smtptest.Start(t)
	go func() { _ = send(t, srv, nil, []string{"a@example.com"}, alternative) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if msgs, err := srv.Wait(ctx, 1); err != nil || len(msgs) != 1 {
		t.Fatalf("Wait: %d messages, %v", len(msgs), err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if msgs, err := srv.Wait(short, 2); !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 1 {
		t.Errorf("Wait for more than came: %d messages, %v", len(msgs), err)
	}
}

func TestCloseRefusesConnections(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Close()
	srv.Close() // twice is fine
	if err := send(t, srv, nil, []string{"a@example.com"}, alternative); err == nil {
		t.Error("delivered to a closed server")
	}
}

// Down refuses every transaction with the temporary code until Up, and
// keeps nothing of what it refused.
func TestDownUntilUp(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Down(451, "4.3.0 queue full, try again later")
	for i := range 3 {
		err := send(t, srv, nil, []string{"a@example.com"}, alternative)
		var tpe *textproto.Error
		if !errors.As(err, &tpe) || tpe.Code != 451 || !strings.Contains(tpe.Msg, "queue full") {
			t.Fatalf("attempt %d during the outage: %v, want 451 queue full", i, err)
		}
	}
	if n := len(srv.Messages()); n != 0 || srv.Refusals() != 3 {
		t.Fatalf("%d messages kept, %d refusals; want 0 and 3", n, srv.Refusals())
	}
	srv.Up()
	if err := send(t, srv, nil, []string{"a@example.com"}, alternative); err != nil {
		t.Fatalf("after Up: %v", err)
	}
	if n := len(srv.Messages()); n != 1 || srv.Refusals() != 3 {
		t.Errorf("%d messages, %d refusals after Up; want 1 and 3", n, srv.Refusals())
	}
}
