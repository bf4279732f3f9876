package configs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/configs"
)

// writeCertPair writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key as PEM files into dir.
func writeCertPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "responder test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
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
	return certFile, keyFile
}

func TestTLSPairLoads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertPair(t, dir)
	cfg, _ := mustLoad(t, writeConfig(t, "listen: 127.0.0.1:8443\nhttp:\n  tls:\n    cert_file: "+certFile+"\n    key_file: "+keyFile+"\n"), configs.Overrides{})
	check(t, "external_url with TLS", cfg.ExternalURL, "https://127.0.0.1:8443")
	tc, err := cfg.HTTP.TLS.ServerConfig()
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	check(t, "min version", tc.MinVersion, uint16(tls.VersionTLS12))
	check(t, "certificates", len(tc.Certificates), 1)

	// The key of another pair does not match the certificate.
	_, otherKey := writeCertPair(t, t.TempDir())
	_, err = configs.Load(writeConfig(t, "http:\n  tls:\n    cert_file: "+certFile+"\n    key_file: "+otherKey+"\n"), configs.Overrides{})
	check(t, "mismatched pair", problemPaths(t, err), []string{"http.tls"})
}

// A key file is named in problems, but nothing of what it holds is shown.
func TestTLSProblemsDoNotShowTheKey(t *testing.T) {
	dir := t.TempDir()
	const secret = "MHcCAQEEIPrivateKeyMaterialThatMustNotPrint"
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\n"+secret+"\n-----END EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, _ := writeCertPair(t, t.TempDir())
	_, err := configs.Load(writeConfig(t, "http:\n  tls:\n    cert_file: "+certFile+"\n    key_file: "+keyFile+"\n"), configs.Overrides{})
	if err == nil {
		t.Fatal("a broken key loaded")
	}
	if !strings.Contains(err.Error(), keyFile) {
		t.Errorf("problem does not name the key file: %v", err)
	}
	if strings.Contains(err.Error(), secret[8:24]) {
		t.Errorf("problem shows the key's contents: %v", err)
	}
}

func TestTokenRateDefaults(t *testing.T) {
	cfg, _ := mustLoad(t, writeConfig(t, `auth:
  tokens:
    - {name: a, token: rate-token-aaaaaaaaaaaa, scopes: [read], rate_per_second: 2.5}
    - {name: b, token: rate-token-bbbbbbbbbbbb, scopes: [read], rate_per_second: 0.2}
    - {name: c, token: rate-token-cccccccccccc, scopes: [read], rate_per_second: 1, burst: 20}
    - {name: d, token: rate-token-dddddddddddd, scopes: [read]}
`), configs.Overrides{})
	var got [][2]float64
	for _, tok := range cfg.Auth.Tokens {
		got = append(got, [2]float64{tok.RatePerSecond, float64(tok.Burst)})
	}
	check(t, "rate and burst", got, [][2]float64{{2.5, 3}, {0.2, 1}, {1, 20}, {0, 0}})
	check(t, "max_alerts default", cfg.Alertmanager.MaxAlerts, configs.DefaultMaxAlerts)
}
