package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
	"github.com/responder-sre/responder/store/postgres"
)

// migrate copies the embedded default's bbolt file into an empty
// PostgreSQL database, for a team growing into replicas: every incident with
// its alerts, timeline and outbox (pending intents included, so nothing
// owed is lost), the idempotency records, the unmatched input and the kinds
// resolved. It refuses a file a daemon holds and a database that is not
// empty, writes everything in one transaction, and checks the counts.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the data directory of the bbolt file (data_dir)")
	to := fs.String("to-postgres", "", "the PostgreSQL DSN to copy into (prefer --to-postgres-file: a DSN may hold a password)")
	toFile := fs.String("to-postgres-file", "", "a file holding the PostgreSQL DSN")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dsn := *to
	if *toFile != "" {
		b, err := os.ReadFile(*toFile)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "responder migrate: %v\n", err)
			return 2
		}
		dsn = strings.TrimSpace(string(b))
	}
	if *from == "" || dsn == "" || fs.NArg() > 0 || (*to != "" && *toFile != "") {
		_, _ = fmt.Fprint(stderr, "responder migrate: want --from DATA_DIR and one of --to-postgres DSN, --to-postgres-file FILE\n"+usage)
		return 2
	}
	counts, err := copyToPostgres(ctx, filepath.Join(*from, dbFile), dsn)
	if err != nil {
		// The DSN never shows: it may hold a password.
		_, _ = fmt.Fprintf(stderr, "responder migrate: %s\n", strings.ReplaceAll(err.Error(), dsn, "<dsn>"))
		return 1
	}
	_, _ = fmt.Fprintf(stdout, "migrated %s to PostgreSQL: %s; counts checked\n", *from, counts)
	return 0
}

// dataCounts are what a store holds, to compare source and target.
type dataCounts struct {
	Incidents, Alerts, Entries, Intents, Pending, Requests, Unmatched, Kinds, Resolved, Heartbeats int
	ActionItems, Postmortems, PostmortemVersions, Checklists                                       int
}

func (c dataCounts) String() string {
	return fmt.Sprintf("%d incidents, %d alerts, %d timeline entries, %d notifications (%d pending), %d idempotency records, %d unmatched, "+
		"%d kinds (%d resolved), %d heartbeats, %d checklists, %d action items, %d post-mortems (%d versions)",
		c.Incidents, c.Alerts, c.Entries, c.Intents, c.Pending, c.Requests, c.Unmatched, c.Kinds, c.Resolved, c.Heartbeats,
		c.Checklists, c.ActionItems, c.Postmortems, c.PostmortemVersions)
}

// snapshot is everything of a bbolt store, read in one transaction.
type snapshot struct {
	incidents []store.Incident // oldest first
	alerts    map[string][]store.Alert
	timeline  map[string][]store.Entry
	steps     map[string][]store.Step // checklists
	intents   []store.Intent          // in sequence order
	unmatched []store.Unmatched
	requests  map[string]store.Request
	kinds     map[string]string
	// history lists every resolved incident of each kind; heartbeats are
	// the dead-man's switch's last pings.
	history    map[string][]string
	heartbeats []store.Heartbeat
	actions    []store.ActionItem
	// postmortems and their versions, by incident
	postmortems map[string]*store.Postmortem
	pmVersions  map[string][]store.PostmortemVersion
}

func copyToPostgres(ctx context.Context, path, dsn string) (dataCounts, error) {
	if _, err := os.Stat(path); err != nil {
		return dataCounts{}, fmt.Errorf("no bbolt file to migrate: %w", err)
	}
	src, err := bolt.Open(path, bolt.Options{}) // a daemon holding it: refused at once, naming it
	if err != nil {
		return dataCounts{}, err
	}
	defer func() { _ = src.Close() }()
	snap, err := readSnapshot(ctx, src)
	if err != nil {
		return dataCounts{}, err
	}
	want := snap.counts()

	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dst, err := postgres.Open(octx, dsn, postgres.Options{})
	if err != nil {
		return dataCounts{}, err
	}
	defer func() { _ = dst.Close() }()
	empty, err := dst.Empty(ctx)
	if err != nil {
		return dataCounts{}, err
	}
	if !empty {
		return dataCounts{}, errors.New("the PostgreSQL database already holds Responder data: migrate only into an empty one")
	}
	if err := dst.Update(ctx, func(tx store.Tx) error { return snap.write(tx) }); err != nil {
		return dataCounts{}, fmt.Errorf("copy: %w (nothing was written)", err)
	}
	got, err := countStore(ctx, dst)
	if err != nil {
		return dataCounts{}, err
	}
	if got != want {
		return dataCounts{}, fmt.Errorf("counts differ after the copy: source %s; PostgreSQL %s", want, got)
	}
	return got, nil
}

func readSnapshot(ctx context.Context, src *bolt.DB) (*snapshot, error) {
	snap := &snapshot{alerts: map[string][]store.Alert{}, timeline: map[string][]store.Entry{}, steps: map[string][]store.Step{},
		postmortems: map[string]*store.Postmortem{}, pmVersions: map[string][]store.PostmortemVersion{}}
	err := src.View(ctx, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{})
		if err != nil {
			return err
		}
		for i := len(page.Incidents) - 1; i >= 0; i-- {
			inc := page.Incidents[i]
			snap.incidents = append(snap.incidents, inc)
			if snap.alerts[inc.ID], err = tx.Alerts(inc.ID); err != nil {
				return err
			}
			if snap.timeline[inc.ID], err = tx.Timeline(inc.ID); err != nil {
				return err
			}
			if snap.steps[inc.ID], err = tx.Checklist(inc.ID); err != nil {
				return err
			}
			ins, err := tx.IncidentIntents(inc.ID)
			if err != nil {
				return err
			}
			snap.intents = append(snap.intents, ins...)
		}
		sort.Slice(snap.intents, func(i, j int) bool { return snap.intents[i].Seq < snap.intents[j].Seq })
		if snap.actions, err = tx.ActionItems(store.ActionFilter{}); err != nil {
			return err
		}
		for _, inc := range snap.incidents {
			p, err := tx.Postmortem(inc.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				continue
			case err != nil:
				return err
			}
			snap.postmortems[inc.ID] = p
			if snap.pmVersions[inc.ID], err = tx.PostmortemVersions(inc.ID); err != nil {
				return err
			}
		}
		snap.unmatched, err = tx.Unmatched(0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the bbolt file: %w", err)
	}
	if snap.requests, err = src.Requests(); err != nil {
		return nil, fmt.Errorf("read the bbolt file: %w", err)
	}
	if snap.kinds, err = src.ResolvedKinds(); err != nil {
		return nil, fmt.Errorf("read the bbolt file: %w", err)
	}
	if snap.history, err = src.ResolvedHistory(); err != nil {
		return nil, fmt.Errorf("read the bbolt file: %w", err)
	}
	if snap.heartbeats, err = src.Heartbeats(); err != nil {
		return nil, fmt.Errorf("read the bbolt file: %w", err)
	}
	return snap, nil
}

func (s *snapshot) counts() dataCounts {
	c := dataCounts{Incidents: len(s.incidents), Intents: len(s.intents), Requests: len(s.requests), Unmatched: len(s.unmatched),
		Kinds: len(s.kinds), Heartbeats: len(s.heartbeats), ActionItems: len(s.actions), Postmortems: len(s.postmortems)}
	for _, vs := range s.pmVersions {
		c.PostmortemVersions += len(vs)
	}
	for _, ids := range s.history {
		c.Resolved += len(ids)
	}
	for _, inc := range s.incidents {
		c.Alerts += len(s.alerts[inc.ID])
		c.Entries += len(s.timeline[inc.ID])
		if len(s.steps[inc.ID]) > 0 {
			c.Checklists++
		}
	}
	for _, in := range s.intents {
		if in.State == store.IntentPending {
			c.Pending++
		}
	}
	return c
}

// write copies the snapshot in: intents get new sequence numbers in the
// same order, and an intent waiting for another (After) is pointed at its
// new number; the next incident id follows the last one copied.
func (s *snapshot) write(tx store.Tx) error {
	var last uint64
	for i := range s.incidents {
		inc := s.incidents[i]
		if err := tx.PutIncident(&inc); err != nil {
			return err
		}
		if n, err := store.IncidentNumber(inc.ID); err == nil {
			last = max(last, n)
		}
		for j := range s.alerts[inc.ID] {
			if err := tx.PutAlert(inc.ID, &s.alerts[inc.ID][j]); err != nil {
				return err
			}
		}
		for _, e := range s.timeline[inc.ID] {
			if err := tx.AppendTimeline(inc.ID, e); err != nil {
				return err
			}
		}
		if steps := s.steps[inc.ID]; len(steps) > 0 {
			if err := tx.PutChecklist(inc.ID, steps); err != nil {
				return err
			}
		}
	}
	seqs := map[uint64]uint64{}
	for _, in := range s.intents {
		old := in.Seq
		if in.After != 0 {
			in.After = seqs[in.After]
		}
		if err := tx.Enqueue(&in); err != nil {
			return err
		}
		seqs[old] = in.Seq
	}
	for _, u := range s.unmatched {
		if err := tx.RecordUnmatched(u); err != nil {
			return err
		}
	}
	for key, r := range s.requests {
		if err := tx.PutRequest(key, r); err != nil {
			return err
		}
	}
	for kind, first := range s.kinds {
		if _, err := tx.ResolvedOfKind(kind, first); err != nil {
			return err
		}
		for _, id := range s.history[kind] { // after the first, which stays first
			if _, err := tx.ResolvedOfKind(kind, id); err != nil {
				return err
			}
		}
	}
	for i := range s.heartbeats {
		if err := tx.PutHeartbeat(&s.heartbeats[i]); err != nil {
			return err
		}
	}
	var lastAction uint64
	for i := range s.actions {
		if err := tx.PutActionItem(&s.actions[i]); err != nil {
			return err
		}
		if n, err := store.ActionNumber(s.actions[i].ID); err == nil {
			lastAction = max(lastAction, n)
		}
	}
	for id, p := range s.postmortems {
		for _, v := range s.pmVersions[id] {
			if err := tx.AddPostmortemVersion(id, v); err != nil {
				return err
			}
		}
		if err := tx.PutPostmortem(p); err != nil {
			return err
		}
	}
	ct, ok := tx.(postgres.CounterTx)
	if !ok {
		return errors.New("the target is not PostgreSQL")
	}
	if err := ct.SetActionItemCounter(lastAction); err != nil {
		return err
	}
	return ct.SetIncidentCounter(last)
}

// countStore counts what the target holds, row by row.
func countStore(ctx context.Context, db *postgres.DB) (dataCounts, error) {
	n, err := db.Counts(ctx)
	if err != nil {
		return dataCounts{}, err
	}
	return dataCounts{Incidents: n["incidents"], Alerts: n["alerts"], Entries: n["timeline"], Intents: n["intents"],
		Pending: n["pending"], Requests: n["requests"], Unmatched: n["unmatched"], Kinds: n["kinds"], Resolved: n["resolved"],
		Heartbeats: n["heartbeats"], ActionItems: n["action_items"], Postmortems: n["postmortems"], PostmortemVersions: n["postmortem_versions"], Checklists: n["checklists"]}, nil
}
