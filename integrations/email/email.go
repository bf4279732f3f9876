// Package email delivers incident messages by SMTP with go-mail: one message
// per delivery, to every address of the delivery's target, with a plain-text
// and an HTML part, threaded per incident. Customer engineering gets its own
// wording (event "customer"). The package only says whether a failure is
// worth retrying; the outbox dispatcher retries.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/responder-sre/responder/integrations"
)

// TLS policies, the values of Config.TLS.
const (
	// TLSMandatory upgrades the connection with STARTTLS and fails when the
	// server does not offer it. Usually port 587 (submission).
	TLSMandatory = "mandatory"
	// TLSOpportunistic uses STARTTLS when the server offers it and plain
	// text otherwise. Credentials are still never sent in plain text, except
	// to a server on loopback.
	TLSOpportunistic = "opportunistic"
	// TLSNone never encrypts: for a relay on the same host or network.
	// Usually port 25.
	TLSNone = "none"
	// TLSImplicit speaks TLS from the first byte (SMTPS). Usually port 465.
	TLSImplicit = "implicit"
)

// DefaultTimeout bounds one delivery, from connecting to the end of DATA,
// when Config.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Config is how to reach the SMTP server and who the mail is from.
type Config struct {
	Host string
	// Port defaults, when zero, to the usual port of the TLS policy: 587
	// (mandatory, opportunistic), 465 (implicit), 25 (none).
	Port int
	// TLS is "mandatory" (the default when empty), "opportunistic", "none"
	// or "implicit".
	TLS string
	// Username and Password authenticate when Username is set, with PLAIN
	// or else LOGIN, whichever the server offers (other mechanisms when it
	// offers neither). Neither is sent over an unencrypted connection
	// except to a server on loopback.
	Username, Password string
	// From is the sender, "Responder <responder@example.com>" or a bare
	// address; it is also the envelope sender.
	From string
	// HelloName is the name given in EHLO; empty means this host's name.
	HelloName string
	// Timeout bounds one delivery; zero means DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (a test's
	// self-signed certificate, a private CA). Its ServerName defaults to
	// Host.
	TLSConfig *tls.Config
	// Clock writes the times in mails: UTC, with the local time of
	// display.time_zone beside it.
	Clock integrations.Clock
	// CustomerTemplate, when set, is customer engineering's own mail: a
	// text/template given a CustomerView, whose output is the mail's text
	// (plain text only) and whose "subject" template, if defined, is its
	// subject. Empty: the built-in customer mail.
	CustomerTemplate string
}

// Notifier sends email. It is safe for concurrent use: every delivery has
// its own connection.
type Notifier struct {
	cfg       Config // with defaults applied
	addr      string // host:port, for errors
	from      *mail.Address
	idDomain  string // right-hand side of Message-IDs when the incident has no URL
	tlsConfig *tls.Config
	text      *texttemplate.Template
	html      *htmltemplate.Template
	customer  *customerTemplate // nil: the built-in customer mail
	now       func() time.Time
}

var _ integrations.Notifier = (*Notifier)(nil)

// New checks cfg without touching the network and returns a Notifier. The
// error lists every problem, each starting with its config key (host, port,
// tls, from, username, password, timeout, hello_name).
func New(cfg Config) (*Notifier, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cfg.Host = strings.TrimSpace(cfg.Host)
	switch {
	case cfg.Host == "":
		bad("host: required")
	case strings.ContainsAny(cfg.Host, " \t\r\n/@"):
		bad("host: %q is not a host name or IP address", cfg.Host)
	default:
		if _, _, err := net.SplitHostPort(cfg.Host); err == nil {
			bad("host: %q includes a port; give the port in port", cfg.Host)
		}
	}

	cfg.TLS = strings.ToLower(strings.TrimSpace(cfg.TLS))
	if cfg.TLS == "" {
		cfg.TLS = TLSMandatory
	}
	switch cfg.TLS {
	case TLSMandatory, TLSOpportunistic:
		if cfg.Port == 0 {
			cfg.Port = 587
		}
	case TLSImplicit:
		if cfg.Port == 0 {
			cfg.Port = 465
		}
	case TLSNone:
		if cfg.Port == 0 {
			cfg.Port = 25
		}
	default:
		bad("tls: %q is not one of mandatory, opportunistic, none, implicit", cfg.TLS)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		bad("port: %d is not between 1 and 65535", cfg.Port)
	}

	var from *mail.Address
	if strings.TrimSpace(cfg.From) == "" {
		bad("from: required")
	} else if a, err := mail.ParseAddress(cfg.From); err != nil {
		bad("from: %q is not an email address: %w", cfg.From, err)
	} else {
		from = a
	}

	switch {
	case cfg.Username != "" && cfg.Password == "":
		bad("password: required when username is set")
	case cfg.Username == "" && cfg.Password != "":
		bad("username: required when password is set")
	}
	if strings.ContainsAny(cfg.Username, "\r\n\x00") {
		bad("username: must be one line of text")
	}
	if strings.ContainsAny(cfg.Password, "\r\n\x00") {
		bad("password: must be one line of text") // never print it
	}
	if cfg.Username != "" && cfg.TLS == TLSNone && !loopback(cfg.Host) {
		bad("tls: none would send the password in plain text to %s; use mandatory or implicit", cfg.Host)
	}

	if strings.ContainsAny(cfg.HelloName, " \t\r\n") {
		bad("hello_name: %q is not a host name", cfg.HelloName)
	}

	switch {
	case cfg.Timeout < 0:
		bad("timeout: %s is negative", cfg.Timeout)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}

	var customer *customerTemplate
	if cfg.CustomerTemplate != "" {
		var err error
		if customer, err = parseCustomerTemplate(cfg.CustomerTemplate); err != nil {
			bad("customer_engineering.template_file: %v", err)
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	text, html, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.Host
	}
	idDomain := "responder"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
		idDomain = msgIDPart(from.Address[i+1:])
	}
	return &Notifier{
		cfg:       cfg,
		addr:      net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		from:      from,
		idDomain:  idDomain,
		tlsConfig: tlsConfig,
		text:      text,
		html:      html,
		customer:  customer,
		now:       time.Now,
	}, nil
}

// CheckAddress reports whether s is one email address as a recipient list
// may hold it ("a@example.com" or "Ops <a@example.com>"), for config checks.
func CheckAddress(s string) error {
	if _, err := mail.ParseAddress(s); err != nil {
		return fmt.Errorf("%q is not an email address: %w", s, err)
	}
	return nil
}

// Name is "email".
func (n *Notifier) Name() string { return "email" }

// Notify sends m to every address in m.Target (comma-separated) as one
// message. Addresses the target cannot parse, and those the server refuses
// for good (5xx), are left out and reported after the others got the
// message, as a permanent error; a temporary refusal of any address (4xx)
// sends nothing and asks for a retry, so that a retry reaches no one twice.
func (n *Notifier) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	rcpts, invalid := parseTarget(m.Target)
	if len(rcpts) == 0 {
		if len(invalid) > 0 {
			return integrations.Receipt{}, integrations.Permanent(
				fmt.Errorf("email %s: no valid recipient: %s", m.Event, strings.Join(invalid, "; ")))
		}
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("email %s: no recipient in target", m.Event))
	}
	msg, err := n.compose(m, rcpts)
	if err != nil {
		return integrations.Receipt{}, integrations.Permanent(fmt.Errorf("email %s: compose: %w", m.Event, err))
	}
	refused, err := n.send(ctx, msg, rcpts)
	if err != nil {
		return integrations.Receipt{}, err
	}
	if len(invalid)+len(refused) > 0 {
		left := append(append([]string(nil), invalid...), refused...)
		return integrations.Receipt{}, integrations.Permanent(n.redact(fmt.Errorf(
			"email %s via %s: delivered to %d of %d recipients; left out %s",
			m.Event, n.addr, len(rcpts)-len(refused), len(rcpts)+len(invalid), strings.Join(left, "; "))))
	}
	return integrations.Receipt{}, nil
}

// parseTarget splits a comma-separated list into distinct addresses and
// the entries that are not addresses.
func parseTarget(target string) (rcpts []*mail.Address, invalid []string) {
	seen := make(map[string]bool)
	for _, s := range strings.Split(target, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		a, err := mail.ParseAddress(s)
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("%q (not an email address)", s))
			continue
		}
		if key := strings.ToLower(a.Address); !seen[key] {
			seen[key] = true
			rcpts = append(rcpts, a)
		}
	}
	return rcpts, invalid
}

// send delivers msg in one SMTP session and returns the recipients the
// server refused for good while accepting the message for the others.
func (n *Notifier) send(ctx context.Context, msg *gomail.Msg, rcpts []*mail.Address) (refused []string, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout,
		fmt.Errorf("no answer within %s: %w", n.cfg.Timeout, context.DeadlineExceeded))
	defer cancel()

	// go-mail bounds each step with its own timeout but does not watch ctx
	// once connected: closing the connection when ctx ends interrupts it.
	var mu sync.Mutex
	var conn net.Conn
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	})
	defer stop()
	dial := func(dctx context.Context, network, _ string) (net.Conn, error) {
		c, err := n.dial(dctx, network)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			_ = c.Close()
			return nil, context.Cause(ctx)
		}
		conn = c
		return c, nil
	}

	client, err := gomail.NewClient(n.cfg.Host, n.clientOptions(dial)...)
	if err != nil {
		return nil, integrations.Permanent(n.redact(fmt.Errorf("email via %s: client: %w", n.addr, err)))
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, n.fail(ctx, "connect", err)
	}
	defer func() { _ = sc.Close() }()

	sender, err := msg.GetSender(false)
	if err != nil {
		return nil, integrations.Permanent(fmt.Errorf("email via %s: sender: %w", n.addr, err))
	}
	if err := sc.Mail(sender); err != nil {
		return nil, n.fail(ctx, "MAIL FROM", err)
	}
	accepted := 0
	for _, r := range rcpts {
		err := sc.Rcpt("<" + r.Address + ">")
		if err == nil {
			accepted++
			continue
		}
		var reply *textproto.Error
		if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
			refused = append(refused, fmt.Sprintf("%s (%d %s)", r.Address, reply.Code, reply.Msg))
			continue
		}
		// A temporary refusal or a broken session: send to nobody now and
		// to everybody on the retry, rather than to some twice.
		_ = sc.Reset()
		return nil, n.fail(ctx, "RCPT TO "+r.Address, err)
	}
	if accepted == 0 {
		_ = sc.Reset()
		return nil, integrations.Permanent(n.redact(fmt.Errorf("email via %s: every recipient refused: %s",
			n.addr, strings.Join(refused, "; "))))
	}
	w, err := sc.Data()
	if err != nil {
		return nil, n.fail(ctx, "DATA", err)
	}
	if _, err := msg.WriteTo(w); err != nil {
		return nil, n.fail(ctx, "write message", err)
	}
	if err := w.Close(); err != nil {
		return nil, n.fail(ctx, "end of DATA", err)
	}
	// The server has the message: a failing QUIT changes nothing.
	_ = sc.Quit()
	return refused, nil
}

func (n *Notifier) clientOptions(dial gomail.DialContextFunc) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(n.cfg.Port),
		// A backstop: ctx, ending at the same Timeout, closes the
		// connection first and so names the cause.
		gomail.WithTimeout(n.cfg.Timeout + time.Second),
		gomail.WithTLSConfig(n.tlsConfig),
		gomail.WithDialContextFunc(dial),
	}
	switch n.cfg.TLS {
	case TLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if n.cfg.HelloName != "" {
		opts = append(opts, gomail.WithHELO(n.cfg.HelloName))
	}
	if n.cfg.Username != "" {
		// Not SMTPAuthAutoDiscover: it never picks PLAIN or LOGIN on a
		// connection it thinks is unencrypted, and it thinks so of every
		// connection from a custom dialer, implicit TLS included. PLAIN and
		// LOGIN themselves refuse to send credentials in plain text except
		// to loopback; when the server offers neither, go-mail falls back
		// to auto-discovery (SCRAM, CRAM-MD5, ...).
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(n.cfg.Username),
			gomail.WithPassword(n.cfg.Password))
	}
	return opts
}

// dial connects to the server, with TLS from the start for implicit TLS.
// It dials host and port itself: go-mail's address is "host:port" even for
// an IPv6 literal.
func (n *Notifier) dial(ctx context.Context, network string) (net.Conn, error) {
	d := &net.Dialer{}
	addr := net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port))
	if n.cfg.TLS == TLSImplicit {
		td := &tls.Dialer{NetDialer: d, Config: n.tlsConfig}
		return td.DialContext(ctx, network, addr)
	}
	return d.DialContext(ctx, network, addr)
}

// fail classifies a failed step of the session: see retryable.
func (n *Notifier) fail(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		// The connection was closed under go-mail: say why.
		return integrations.Temporary(fmt.Errorf("email via %s: %s: %w", n.addr, step, context.Cause(ctx)), 0)
	}
	if errors.Is(err, gosmtp.ErrUnencrypted) {
		err = fmt.Errorf("credentials are not sent over an unencrypted connection (tls %s): %w", n.cfg.TLS, err)
	}
	wrapped := n.redact(fmt.Errorf("email via %s: %s: %w", n.addr, step, err))
	if retryable(err) {
		return integrations.Temporary(wrapped, 0)
	}
	return integrations.Permanent(wrapped)
}

// retryable says whether trying the same delivery again may succeed:
//
//   - an SMTP reply 4xx: yes; 5xx (550 unknown user, 554, 535 bad
//     credentials): no;
//   - a certificate the server shows that cannot be verified, or TLS spoken
//     to a plain-text port: no, the configuration is wrong;
//   - a refused, reset, closed or timed-out connection, a DNS failure: yes;
//   - anything else (no STARTTLS under tls mandatory, no AUTH offered, a
//     reply that is not SMTP): no.
func retryable(err error) bool {
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &recordErr) {
		return false
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code < 500 || reply.Code > 599
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// redact keeps the password out of an error, whatever a server or library
// put into it.
func (n *Notifier) redact(err error) error {
	if n.cfg.Password == "" || !strings.Contains(err.Error(), n.cfg.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), n.cfg.Password, "<secret>"))
}

func loopback(host string) bool {
	// Mirrors go-mail, whose PLAIN and LOGIN allow plain text to these.
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
