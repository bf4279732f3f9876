// Package smtptest runs a real SMTP server on loopback for tests. It records
// every message it accepts, can require AUTH PLAIN and TLS (STARTTLS or
// implicit, with a certificate made up at start), and can be told to refuse
// or drop the next deliveries, or to refuse everything for a while (Down),
// so that a test sees what a mail server would really answer.
//
//	srv := smtptest.Start(t, smtptest.WithAuth("alice", "secret"))
//	host, port := srv.Addr()
//	... deliver ...
//	msgs := srv.Messages()
//	text, err := msgs[0].Text()
//
// A Server is safe for concurrent use.
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Option configures a Server at Start.
type Option func(*options)

type options struct {
	username, password string
	startTLS           bool
	implicitTLS        bool
}

// WithAuth makes the server offer AUTH PLAIN and refuse MAIL, RCPT and DATA
// (502 5.7.0) until a client has authenticated with these credentials. Wrong
// credentials are answered 535 5.7.8. AUTH is offered without TLS too, since
// most tests run in plain text on loopback.
func WithAuth(username, password string) Option {
	return func(o *options) { o.username, o.password = username, password }
}

// WithSTARTTLS makes the server offer STARTTLS with a self-signed
// certificate for 127.0.0.1, ::1 and localhost; a client trusts it through
// ClientTLSConfig.
func WithSTARTTLS() Option {
	return func(o *options) { o.startTLS = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte (SMTPS, as
// on port 465), with the same kind of certificate as WithSTARTTLS.
func WithImplicitTLS() Option {
	return func(o *options) { o.implicitTLS = true }
}

// Message is one message the server accepted.
type Message struct {
	From     string      // envelope sender (MAIL FROM), without angle brackets
	To       []string    // envelope recipients (RCPT TO) in the order given
	Data     []byte      // the message as received after DATA
	Header   mail.Header // Data's header, parsed; nil when Data has none
	AuthUser string      // the user the session authenticated as, if any
	TLS      bool        // whether the session was encrypted
}

// Server is an SMTP server listening on 127.0.0.1.
type Server struct {
	srv       *smtp.Server
	ln        net.Listener
	host      string
	port      int
	clientTLS *tls.Config
	opts      options
	log       *testLogger
	served    chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	msgs       []Message
	changed    chan struct{} // closed and replaced when a message arrives
	reject     []*smtp.SMTPError
	drop       int
	rcptReject map[string]*smtp.SMTPError
	down       *smtp.SMTPError // set by Down: every MAIL FROM is refused until Up
	refusals   int             // transactions refused by Down
}

// Start starts a server on 127.0.0.1 on a free port and registers its Close
// with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		changed:    make(chan struct{}),
		rcptReject: make(map[string]*smtp.SMTPError),
		served:     make(chan struct{}),
		log:        &testLogger{t: t},
	}
	for _, o := range opts {
		o(&s.opts)
	}

	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.AllowInsecureAuth = true
	srv.ErrorLog = s.log
	s.srv = srv

	var serverTLS *tls.Config
	if s.opts.startTLS || s.opts.implicitTLS {
		var err error
		serverTLS, s.clientTLS, err = selfSigned()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		srv.TLSConfig = serverTLS
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("smtptest: listener address %v is not TCP", ln.Addr())
	}
	s.host, s.port = addr.IP.String(), addr.Port
	if s.opts.implicitTLS {
		ln = tls.NewListener(ln, serverTLS)
	}

	s.ln = ln
	go func() {
		defer close(s.served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(s.Close)
	return s
}

// Addr is where the server listens: host is "127.0.0.1".
func (s *Server) Addr() (host string, port int) { return s.host, s.port }

// ClientTLSConfig returns a TLS configuration that trusts the server's
// certificate (set its ServerName to the host you dial, or leave it empty
// where the client fills it in), or nil when the server has no TLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait blocks until the server has accepted at least n messages, and
// returns them all; it returns ctx's error, with what arrived, when ctx ends
// first. It is for tests whose mail is sent in the background.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		changed := s.changed
		got := len(s.msgs)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("smtptest: %d of %d messages arrived: %w", got, n, ctx.Err())
		case <-changed:
		}
	}
}

// RejectNext makes the server refuse the next n messages at the end of
// DATA, after reading them, with code (4xx: try again later, 5xx: never)
// and msg. Refused messages are not recorded. It panics on a code that is
// not 4xx or 5xx.
func (s *Server) RejectNext(n, code int, msg string) {
	e := smtpError(code, msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.reject = append(s.reject, e)
	}
}

// RejectRecipient makes the server refuse RCPT TO addr (compared without
// regard to case) with code and msg, in every session until it is called
// again for addr with code 0, which accepts addr again. It panics on a code
// that is neither 0, 4xx nor 5xx.
func (s *Server) RejectRecipient(addr string, code int, msg string) {
	key := strings.ToLower(strings.TrimSpace(addr))
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.rcptReject, key)
		return
	}
	s.rcptReject[key] = smtpError(code, msg)
}

// Down makes the server refuse every transaction at MAIL FROM with code
// and msg until Up, as a mail server that is overloaded or whose queue is
// full answers (451 4.3.0, 452 4.3.1, 421 4.3.2); the session stays open, as
// it does with such servers. It panics on a code that is not 4xx or 5xx.
func (s *Server) Down(code int, msg string) {
	e := smtpError(code, msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = e
}

// Up ends what Down started.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = nil
}

// Refusals counts the transactions refused by Down.
func (s *Server) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

// DropNext makes the server close the connection, without an answer, after
// reading the body of each of the next n messages: the client cannot know
// whether they were delivered. Dropped messages are not recorded.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop += n
}

// Close stops the server and closes its connections; a client then gets
// "connection refused". It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.log.stop()
		_ = s.srv.Close()
		// go-smtp's Close misses a listener that Serve has not registered
		// yet: close it here too.
		_ = s.ln.Close()
		<-s.served
	})
}

func smtpError(code int, msg string) *smtp.SMTPError {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("smtptest: code %d is not a 4xx or 5xx SMTP reply", code))
	}
	if msg == "" {
		msg = "Refused by smtptest"
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// takeFailure returns what to do with a message whose body has been read:
// drop the connection, refuse it with an error, or (both zero) accept it.
func (s *Server) takeFailure() (drop bool, refuse *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drop > 0 {
		s.drop--
		return true, nil
	}
	if len(s.reject) > 0 {
		refuse, s.reject = s.reject[0], s.reject[1:]
		return false, refuse
	}
	return false, nil
}

// mailFailure is the error of a MAIL FROM during an outage, or nil.
func (s *Server) mailFailure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		return nil
	}
	s.refusals++
	return s.down
}

func (s *Server) rcptFailure(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.rcptReject[strings.ToLower(addr)]; ok {
		return e
	}
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// session is one client connection; go-smtp calls it from one goroutine.
type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) ||
			username != ss.s.opts.username || password != ss.s.opts.password {
			// go-smtp answers other errors with 454 (temporary); a wrong
			// password is a permanent 535.
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) authorized() error {
	if ss.s.opts.username != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := ss.authorized(); err != nil {
		return err
	}
	if err := ss.s.mailFailure(); err != nil {
		return err
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.authorized(); err != nil {
		return err
	}
	if err := ss.s.rcptFailure(to); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if err := ss.authorized(); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	drop, refuse := ss.s.takeFailure()
	if drop {
		_ = ss.conn.Conn().Close()
		return errors.New("connection dropped by smtptest")
	}
	if refuse != nil {
		return refuse
	}
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data, AuthUser: ss.authUser}
	_, m.TLS = ss.conn.TLSConnectionState()
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = parsed.Header
	}
	ss.s.record(m)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// testLogger passes go-smtp's internal errors to t.Logf until the server
// stops, after which t may be gone.
type testLogger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("smtptest: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) { l.Printf("%s", fmt.Sprintln(v...)) }

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// selfSigned makes a certificate for the loopback names, valid for a day,
// and the server and client TLS configurations that use it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
