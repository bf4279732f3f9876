// Package pgtest runs a real PostgreSQL for tests: Debian's postgresql
// package, a cluster made with initdb in a temporary directory and started
// with pg_ctl on a Unix socket only (no TCP port to collide on), one per
// test binary, with a fresh database per test. As root (initdb refuses to
// run as root) the server runs as the postgres user.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL cluster.
type Server struct {
	dir   string // the socket directory, the data directory below it
	bin   string // the directory of initdb and pg_ctl
	owner *user.User
	dbs   atomic.Int64
}

// Start makes and starts a cluster. Stop it when done.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir(): its parents are private to root, and the server runs
	// as postgres. A short path keeps the socket's under 107 bytes.
	dir, err := os.MkdirTemp("", "rpg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		if s.owner, err = user.Lookup("postgres"); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user of Debian's postgresql package: %w", err)
		}
		uid, _ := strconv.Atoi(s.owner.Uid)
		gid, _ := strconv.Atoi(s.owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if out, err := s.start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log")) //nolint:gosec // the server log in our temp dir
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return s, nil
}

// binDir is the newest PostgreSQL's bin directory.
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("pgtest: no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql package (make deps does)")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi > vj
	})
	return filepath.Dir(found[0]), nil
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if s.owner != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...) //nolint:gosec // PostgreSQL's own tools, our arguments
	} else {
		cmd = exec.CommandContext(ctx, path, args...) //nolint:gosec // PostgreSQL's own tools, our arguments
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// DSN is the connection string of database name on this server.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", s.dir, name)
}

// NewDatabase creates an empty database for one test and returns its DSN.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	dsn, err := s.CreateDatabase(context.Background(), fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1)))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// CreateDatabase creates an empty database named name (letters, digits
// and _) and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return s.DSN(name), nil
}

// Crash stops the server at once, as a crash would (pg_ctl -m immediate):
// committed transactions survive it, as WAL replay at the next start
// shows. Resume starts it again.
func (s *Server) Crash() error {
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Resume starts the server Crash stopped.
func (s *Server) Resume() error {
	if out, err := s.start(); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) start() ([]byte, error) {
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=on -c max_connections=200", s.dir)
	return s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "-o", opts, "start")
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	_, _ = s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(s.dir)
}

// Log is the server's log, for a failing test to show.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log")) //nolint:gosec // the server log in our temp dir
	return strings.TrimSpace(string(b))
}
