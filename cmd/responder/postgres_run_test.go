package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/responder-sre/responder/store/postgres/pgtest"
)

// The daemon on PostgreSQL (store.postgres) serves the same API; while the
// database is down, writes answer 503 with Retry-After and /readyz says so,
// nothing else is a 5xx, and it recovers once the database is back,
// without a restart; nothing accepted is lost.
func TestServeOnPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dsn := pg.NewDatabase(t)
	d := startDaemon(t, fmt.Sprintf("store:\n  postgres:\n    dsn: %q\n", dsn), nil, "http")

	declare := func(title string) *http.Response {
		t.Helper()
		resp, err := d.client.Post(d.base+"/api/v1/incidents", "application/json",
			strings.NewReader(fmt.Sprintf(`{"title":%q,"severity":"S2","declared_by":"maria"}`, title)))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if r := declare("before the crash"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare on PostgreSQL: %d", r.StatusCode)
	}

	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	if r := declare("while down"); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("declare while the database is down: %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/readyz", "/api/v1/incidents/INC-1"} {
		resp, err := d.client.Get(d.base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s while the database is down: %d, want 503", path, resp.StatusCode)
		}
	}

	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	if r := declare("after the restart"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare after the database came back: %d", r.StatusCode)
	}
	resp, err := d.client.Get(d.base + "/api/v1/incidents?limit=10")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	list := string(b)
	if !strings.Contains(list, "before the crash") || !strings.Contains(list, "after the restart") || strings.Contains(list, "while down") {
		t.Errorf("incidents after the restart:\n%s", list)
	}
	if strings.Contains(d.logs.String(), dsn) {
		t.Error("the DSN reached the log")
	}
}
