package handlers

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/responder-sre/responder/store/bolt"
)

const tokBackup = "backup-job-token-0123456789"

func withBackup() envOption {
	return func(s envSetup) {
		*s.backup = true
		s.cfg.Tokens = append(s.cfg.Tokens, Token{Name: "backup", Value: tokBackup, Scopes: []string{ScopeAdmin}})
	}
}

// GET /api/v1/admin/backup needs the admin scope (which no other scope
// implies) and answers the whole store as a file that verifies and holds
// what was written.
func TestAdminBackup(t *testing.T) {
	e := newEnv(t, withBackup())
	for _, body := range []string{`{"title":"checkout is down","severity":"S1"}`, `{"title":"search is slow","severity":"S3"}`} {
		if r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(body)); r.status != http.StatusCreated {
			t.Fatalf("declare: %d %s", r.status, r.body)
		}
	}
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"read", tokRead, http.StatusForbidden},
		{"every other scope", tokAll, http.StatusForbidden},
	} {
		r := e.do(http.MethodGet, "/api/v1/admin/backup", c.token, nil)
		if r.status != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.want, r.body)
		}
		if r.status == http.StatusForbidden && !strings.Contains(r.errorText(t), `"admin"`) {
			t.Errorf("%s: error %q does not name the scope it lacks", c.name, r.errorText(t))
		}
	}
	r := e.do(http.MethodGet, "/api/v1/admin/backup", tokBackup, nil)
	if r.status != http.StatusOK {
		t.Fatalf("backup: status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %q, body %d bytes", cl, len(r.body))
	}
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="responder-20261117T030000Z`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	sum, err := bolt.WriteFile(dst, func(w io.Writer) (int64, error) {
		n, err := w.Write(r.body)
		return int64(n), err
	})
	if err != nil {
		t.Fatalf("the answer is not a whole database: %v", err)
	}
	if sum.Incidents != 2 || sum.Open != 2 {
		t.Errorf("the copy holds %s, want the 2 open incidents declared", sum)
	}
	if _, err := os.Stat(dst); err != nil {
		t.Fatal(err)
	}
}

// A store without backups of its own kind (PostgreSQL) says where its
// backups come from.
func TestAdminBackupWithoutBackup(t *testing.T) {
	e := newEnv(t, func(s envSetup) {
		s.cfg.Tokens = append(s.cfg.Tokens, Token{Name: "backup", Value: tokBackup, Scopes: []string{ScopeAdmin}})
	})
	r := e.do(http.MethodGet, "/api/v1/admin/backup", tokBackup, nil)
	if r.status != http.StatusNotFound || !strings.Contains(r.errorText(t), "PostgreSQL") {
		t.Errorf("status %d %s, want 404 pointing at PostgreSQL's own backups", r.status, r.body)
	}
}

// A request another site made (a page's no-cors GET to the loopback
// default) gets no copy.
func TestAdminBackupRefusesOtherSites(t *testing.T) {
	e := newEnv(t, withBackup(), withoutTokens())
	for _, site := range []string{"cross-site", "same-site"} {
		r := e.doWith(http.MethodGet, "/api/v1/admin/backup", "", nil, http.Header{"Sec-Fetch-Site": {site}})
		if r.status != http.StatusForbidden || len(r.body) > 1024 {
			t.Errorf("Sec-Fetch-Site %s: %d (%d bytes), want 403 and no copy", site, r.status, len(r.body))
		}
	}
	if r := e.doWith(http.MethodGet, "/api/v1/admin/backup", "", nil, http.Header{"Sec-Fetch-Site": {"none"}}); r.status != http.StatusOK {
		t.Errorf("typed in the address bar (Sec-Fetch-Site none): %d, want 200", r.status)
	}
}
