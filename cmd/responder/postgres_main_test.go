package main

import (
	"os"
	"sync"
	"testing"

	"github.com/responder-sre/responder/store/postgres/pgtest"
)

// The PostgreSQL of this test binary: started by the first test that needs
// one, shared (each test gets a database of its own), stopped when every
// test has run.
var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
)

func testPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = pgtest.Start() })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	return pgServer
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		pgServer.Stop()
	}
	os.Exit(code)
}
