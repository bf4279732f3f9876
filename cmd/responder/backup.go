package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers"
	"github.com/responder-sre/responder/integrations/outbox"
	"github.com/responder-sre/responder/store/bolt"
)

// backup writes a consistent copy of the embedded default's bbolt file to
// --to while the daemon keeps serving: through the daemon's
// GET /api/v1/admin/backup when it holds the file (it alone can read it
// then), or straight from the file when no daemon runs on it. The copy is
// written beside --to, synced, checked (bbolt's consistency check and the
// schema version) and only then renamed into place.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", "", "the file to write the copy to (replaced only once the new copy is whole)")
	configPath := fs.String("config", "", "the daemon's config: where its data is, and how to reach it (default: the embedded default)")
	dataDir := fs.String("data-dir", "", "the data directory, overrides the config's data_dir")
	url := fs.String("url", "", "the running daemon's base URL, e.g. http://127.0.0.1:9095 (default: from the config's listen)")
	tokenFile := fs.String("token-file", "", "a file holding a token with the admin scope (default: one from the config's auth.tokens)")
	heartbeat := fs.String("heartbeat", "", "after a good copy, ping this heartbeat of the daemon (its token needs the ingest scope too), "+
		"so that Responder opens an incident when the backups stop")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *to == "" || fs.NArg() > 0 {
		_, _ = fmt.Fprint(stderr, "responder backup: want --to FILE\n"+usage)
		return 2
	}
	fail := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "responder backup: %v\n", err)
		return 1
	}
	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail(err)
		}
		token = strings.TrimSpace(string(b))
	}
	// ping tells the daemon at base that a good copy was made.
	ping := func(base string) int {
		if *heartbeat == "" {
			return 0
		}
		if err := pingHeartbeat(ctx, base, token, *heartbeat); err != nil {
			return fail(fmt.Errorf("the copy is good, but %w", err))
		}
		_, _ = fmt.Fprintf(stdout, "pinged heartbeat %s\n", *heartbeat)
		return 0
	}
	if *url != "" {
		sum, err := bolt.WriteFile(*to, func(w io.Writer) (int64, error) { return fetchBackup(ctx, *url, token, w) })
		if err != nil {
			return fail(err)
		}
		_, _ = fmt.Fprintf(stdout, "backed up %s to %s: %s\n", *url, *to, sum)
		return ping(*url)
	}
	cfg, err := configs.Load(*configPath, configs.Overrides{DataDir: *dataDir})
	if err != nil {
		printConfigError(stderr, *configPath, err)
		return 1
	}
	if cfg.Store.Postgres != nil {
		return fail(errors.New("this config keeps its data in PostgreSQL: back it up with the database's own tools (pg_dump or continuous archiving; docs/operations.md)"))
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	if sameFile(path, *to) {
		return fail(fmt.Errorf("--to %s is the database itself: write the backup somewhere else", *to))
	}
	sum, err := bolt.WriteFile(*to, func(w io.Writer) (int64, error) { return bolt.BackupFile(path, w) })
	if err == nil {
		_, _ = fmt.Fprintf(stdout, "backed up %s (no daemon running on it) to %s: %s\n", path, *to, sum)
		if *heartbeat != "" {
			_, _ = fmt.Fprintf(stderr, "responder backup: no daemon runs on %s: heartbeat %s not pinged\n", path, *heartbeat)
		}
		return 0
	}
	if !errors.Is(err, bolt.ErrHeld) {
		return fail(err)
	}
	// A daemon holds the file: ask it.
	base, err := daemonURL(cfg)
	if err != nil {
		return fail(fmt.Errorf("%s is held by a running daemon, and %w", path, err))
	}
	if *tokenFile == "" {
		if token, err = adminToken(cfg); err != nil {
			return fail(err)
		}
	}
	sum, err = bolt.WriteFile(*to, func(w io.Writer) (int64, error) { return fetchBackup(ctx, base, token, w) })
	if err != nil {
		return fail(err)
	}
	_, _ = fmt.Fprintf(stdout, "backed up %s (through the daemon at %s) to %s: %s\n", path, base, *to, sum)
	return ping(base)
}

// sameFile reports whether a and b name one file, or would.
func sameFile(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, errA := filepath.Abs(a)
	ab, errB := filepath.Abs(b)
	return errA == nil && errB == nil && aa == ab
}

// daemonURL is where the daemon of cfg answers on this machine.
func daemonURL(cfg *configs.Config) (string, error) {
	if cfg.HTTP.TLS.Enabled() {
		return "", errors.New("the daemon serves TLS: pass --url https://<its name>:<port> (its certificate is checked against the system's roots)")
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// adminToken is a configured token with the admin scope; none is needed
// when the config has no tokens (loopback only).
func adminToken(cfg *configs.Config) (string, error) {
	if len(cfg.Auth.Tokens) == 0 {
		return "", nil
	}
	for _, t := range cfg.Auth.Tokens {
		if slices.Contains(t.Scopes, handlers.ScopeAdmin) {
			return t.Token.Value(), nil
		}
	}
	return "", errors.New("no token in auth.tokens has the admin scope: add one for backups (docs/operations.md), or pass --token-file")
}

// backupClient bounds the connection and the first byte of an answer, not
// the whole of it: a copy takes as long as the file is large.
func backupClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}}
}

// answerError is the daemon's {"error"} of a refused request.
func answerError(res *http.Response) string {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body)
	if body.Error == "" {
		return "no reason given"
	}
	return body.Error
}

// pingHeartbeat pings the daemon's heartbeat name.
func pingHeartbeat(ctx context.Context, base, token, name string) error {
	u := strings.TrimRight(base, "/") + "/api/v1/heartbeats/" + neturl.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("ping heartbeat %s: %w", name, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := backupClient().Do(req)
	if err != nil {
		return fmt.Errorf("ping heartbeat %s: %w", name, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("ping heartbeat %s: %s: %s", name, res.Status, answerError(res))
	}
	return nil
}

// fetchBackup copies the daemon's GET /api/v1/admin/backup to w, and fails
// when the copy is shorter than the Content-Length the daemon announced.
func fetchBackup(ctx context.Context, base, token string, w io.Writer) (int64, error) {
	u := strings.TrimRight(base, "/") + "/api/v1/admin/backup"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("back up through %s: %w", base, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := backupClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("back up through %s: %w", base, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("back up through %s: %s: %s", base, res.Status, answerError(res))
	}
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return n, fmt.Errorf("back up through %s: cut short after %d bytes: %w", base, n, err)
	}
	if res.ContentLength >= 0 && n != res.ContentLength {
		return n, fmt.Errorf("back up through %s: cut short: %d of %d bytes", base, n, res.ContentLength)
	}
	return n, nil
}

// restore puts a backup in place as the data directory's bbolt file. It
// refuses while a daemon holds that file, checks the backup first, keeps
// the file it replaces (moved aside, never deleted), and marks every
// delivery the backup has pending as in doubt: the daemon it was taken
// from may have made some of them after the copy, and Slack is asked
// before such a message is sent again.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup to restore")
	dataDir := fs.String("data-dir", "", "the data directory to restore into (default: the config's data_dir)")
	configPath := fs.String("config", "", "the daemon's config, for its data_dir")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || (*dataDir == "" && *configPath == "") || fs.NArg() > 0 {
		_, _ = fmt.Fprint(stderr, "responder restore: want --from FILE and --data-dir DIR (or --config FILE)\n"+usage)
		return 2
	}
	dir := *dataDir
	if dir == "" {
		cfg, err := configs.Load(*configPath, configs.Overrides{})
		if err != nil {
			printConfigError(stderr, *configPath, err)
			return 1
		}
		if cfg.Store.Postgres != nil {
			_, _ = fmt.Fprintln(stderr, "responder restore: this config keeps its data in PostgreSQL: restore it with the database's own tools (docs/operations.md)")
			return 1
		}
		dir = cfg.DataDir
	}
	path := filepath.Join(dir, dbFile)
	marked := 0
	r, err := bolt.Restore(*from, path, time.Now(), func(db *bolt.DB) error {
		var err error
		marked, err = outbox.MarkInDoubt(ctx, db, time.Now())
		return err
	})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "responder restore: %v\n", err)
		if r.Previous != "" {
			_, _ = fmt.Fprintf(stderr, "responder restore: the file that was there is also kept as %s\n", r.Previous)
		}
		return 1
	}
	_, _ = fmt.Fprintf(stdout, "restored %s into %s: %s; %d pending deliveries marked in doubt (Slack is asked before any is sent again)\n",
		*from, path, r.Summary, marked)
	if r.Previous != "" {
		_, _ = fmt.Fprintf(stdout, "the file that was there is kept as %s\n", r.Previous)
	}
	return 0
}
