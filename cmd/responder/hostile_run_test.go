package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// daemon is a responder serve started by run() in-process, on a config
// file, stopped at the end of the test (or by stop).
type daemon struct {
	addr   string
	logs   *syncBuffer
	client *http.Client
	base   string
	stop   func() // stops it and waits; at most once, and at cleanup too
}

// startDaemon writes cfg to a file and serves it on a free loopback port
// with a data directory of its own, until the test ends. client (nil: plain
// HTTP) is used to wait for /readyz at base.
func startDaemon(t *testing.T, cfg string, client *http.Client, scheme string) *daemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, client, scheme, "--config", path, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
}

// runDaemon runs responder serve with args until the test ends or its
// stop is called, and waits for /readyz with client (nil: plain HTTP).
func runDaemon(t *testing.T, client *http.Client, scheme string, args ...string) *daemon {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	d := &daemon{logs: &syncBuffer{}, client: client}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), noEnv, d.logs, d.logs)
	}()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exit %d:\n%s", code, d.logs.String())
				}
			case <-time.After(20 * time.Second):
				t.Errorf("serve did not stop within 20s")
			}
		})
	}
	t.Cleanup(d.stop)
	d.addr = servingAddr(t, d.logs, done)
	d.base = scheme + "://" + d.addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(d.base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before ready:\n%s", code, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 15s: %v\n%s", err, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedWithin reports whether the server closed conn (a read ends in EOF
// or a reset) within limit, reading and keeping whatever it sent first.
func closedWithin(conn net.Conn, limit time.Duration) (closed bool, got []byte) {
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, got
	}
	return true, got
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestSlowClients runs the real server of run() with short timeouts and
// talks to it over raw TCP like a slow or stalled client would: each
// timeout closes the connection (or answers 408) long before the client
// would have finished, and nothing is written.
func TestSlowClients(t *testing.T) {
	d := startDaemon(t, `http:
  read_header_timeout: 300ms
  read_timeout: 1s
  write_timeout: 2s
  idle_timeout: 500ms
`, nil, "http")
	// A client that never stops dribbling would run for this long; the
	// server must have cut it off well before.
	const dribbleFor = 20 * time.Second

	t.Run("read header timeout", func(t *testing.T) {
		conn := dial(t, d.addr)
		done := make(chan bool, 1)
		go func() { closed, _ := closedWithin(conn, dribbleFor+5*time.Second); done <- closed }()
		header := "GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n" + strings.Repeat("X-Slow: y\r\n", 1000)
		closed := false
		for i, start := 0, time.Now(); i < len(header) && time.Since(start) < dribbleFor && !closed; i++ {
			if _, err := conn.Write([]byte{header[i]}); err != nil {
				break // the server hung up
			}
			select {
			case closed = <-done:
			case <-time.After(50 * time.Millisecond):
			}
		}
		if !closed {
			select {
			case closed = <-done:
			case <-time.After(5 * time.Second):
			}
		}
		if !closed {
			t.Fatal("the server kept a connection whose headers never ended")
		}
	})

	t.Run("read timeout of the body: 408", func(t *testing.T) {
		conn := dial(t, d.addr)
		body := `{"title":"slow body","severity":"S4","declared_by":"slow"}`
		head := fmt.Sprintf("POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		answered := make(chan []byte, 1)
		go func() { _, got := closedWithin(conn, dribbleFor+5*time.Second); answered <- got }()
		var got []byte
		func() {
			for i, start := 0, time.Now(); i < len(body)-1 && time.Since(start) < dribbleFor; i++ { // never the last byte
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
				select {
				case got = <-answered:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		if got == nil {
			got = <-answered
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		if err != nil {
			t.Fatalf("no HTTP answer to a body that never ended (%v): %q", err, got)
		}
		defer func() { _ = resp.Body.Close() }()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(msg), "http.read_timeout") {
			t.Errorf("answer %d %s, want 408 naming http.read_timeout", resp.StatusCode, msg)
		}
		if n := d.countIncidents(t); n != 0 {
			t.Errorf("%d incidents after a body that never arrived, want 0", n)
		}
	})

	t.Run("header flood: 431 from net/http", func(t *testing.T) {
		conn := dial(t, d.addr)
		go func() {
			// 100 KiB of headers, over the default max_header_bytes.
			_, _ = conn.Write([]byte("GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n" + strings.Repeat("X-Flood: "+strings.Repeat("f", 90)+"\r\n", 1024) + "\r\n"))
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a header flood: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("header flood: %d, want 431", resp.StatusCode)
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		conn := dial(t, d.addr)
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
		}
		// Keep-alive, then silence: the server hangs up after idle_timeout.
		_ = conn.SetReadDeadline(time.Now().Add(dribbleFor))
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the server sent more on an idle connection")
		} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("idle connection still open after %s", dribbleFor)
		}
	})
}

// stalledReader sends pipelined GET /metrics requests whose answers (9 KiB
// each) far exceed what the sockets buffer (a few MiB on loopback), reads nothing for stall, then
// reads until the server closes. It returns how many answers arrived and
// whether the server closed the connection.
func stalledReader(t *testing.T, addr string, requests int, stall time.Duration) (answers int, closed bool) {
	t.Helper()
	conn := dial(t, addr)
	req := "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	go func() { _, _ = conn.Write([]byte(strings.Repeat(req, requests))) }()
	time.Sleep(stall)
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	for answers < requests {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return answers, !errors.As(err, &ne) || !ne.Timeout()
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return answers, true
		}
		answers++
	}
	return answers, false
}

// TestWriteTimeout: a client that sends requests and stops reading holds
// a connection only until the server's write timeout; with a long write
// timeout the same client, once it reads, gets every answer (so that it is
// the write timeout, not another, that cut it off).
func TestWriteTimeout(t *testing.T) {
	const requests, stall = 2000, 3 * time.Second
	short := startDaemon(t, "http:\n  read_timeout: 30s\n  write_timeout: 1s\n", nil, "http")
	answers, closed := stalledReader(t, short.addr, requests, stall)
	if !closed || answers >= requests {
		t.Fatalf("write_timeout 1s: %d of %d answers, closed %v: want the connection cut before the end", answers, requests, closed)
	}
	t.Logf("write_timeout 1s: %d of %d answers before the server ended the connection", answers, requests)

	long := startDaemon(t, "http:\n  read_timeout: 30s\n  write_timeout: 30s\n", nil, "http")
	if answers, closed := stalledReader(t, long.addr, requests, stall); answers != requests || closed {
		t.Fatalf("write_timeout 30s: %d of %d answers, closed %v: want them all", answers, requests, closed)
	}
}

func (d *daemon) countIncidents(t *testing.T) int {
	t.Helper()
	resp, err := d.client.Get(d.base + "/api/v1/incidents")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return len(out.Incidents)
}

// writeTestCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// its key into dir and returns the files and a pool that trusts it.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestTLSListener serves run() over TLS with a certificate made for the
// test: a client that trusts it talks HTTPS, TLS 1.1 is refused, and a
// plain-HTTP request to the port is answered 400 without reaching the API.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t, t.TempDir())
	cfg := fmt.Sprintf("http:\n  tls:\n    cert_file: %s\n    key_file: %s\n", certFile, keyFile)

	cfgFile := filepath.Join(t.TempDir(), "tls.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "check-config", cfgFile); code != 0 {
		t.Fatalf("check-config of the TLS config: %d %s%s", code, out, errOut)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	d := startDaemon(t, cfg, client, "https")

	resp, err := client.Post(d.base+"/api/v1/incidents", "application/json", strings.NewReader(`{"title":"over TLS","severity":"S4","declared_by":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("declare over TLS: %d, tls %+v", resp.StatusCode, resp.TLS)
	}
	if !strings.Contains(d.logs.String(), `"scheme":"https"`) {
		t.Errorf("the start-up log does not say https:\n%s", d.logs.String())
	}

	old := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // the test checks that the server refuses it
	if conn, err := tls.Dial("tcp", d.addr, old); err == nil {
		_ = conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	plain := &http.Client{Timeout: 5 * time.Second}
	resp, err = plain.Post("http://"+d.addr+"/api/v1/incidents", "application/json", strings.NewReader(`{"title":"plain","severity":"S4","declared_by":"t"}`))
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "HTTPS") {
		t.Errorf("plain HTTP: %d %q, want 400 from the TLS listener", resp.StatusCode, msg)
	}
	if n := d.countIncidents(t); n != 1 {
		t.Errorf("%d incidents, want only the one declared over TLS", n)
	}
}
