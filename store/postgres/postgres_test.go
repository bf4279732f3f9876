package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/postgres"
	"github.com/responder-sre/responder/store/postgres/pgtest"
	"github.com/responder-sre/responder/store/storetest"
)

// server is the PostgreSQL of this test binary, one for every test.
var server *pgtest.Server

func TestMain(m *testing.M) {
	var err error
	if server, err = pgtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

// The PostgreSQL backend passes the store's conformance suite, each test
// on a fresh database.
func TestConformance(t *testing.T) {
	storetest.RunSuite(t, func(t *testing.T) storetest.Opener {
		dsn := server.NewDatabase(t)
		return func() (store.DB, error) { return postgres.Open(context.Background(), dsn, postgres.Options{}) }
	})
}

// Replicas starting together on an empty database migrate it once, under
// the lock: every one opens, and the schema has its version once.
func TestReplicasMigrateOnce(t *testing.T) {
	dsn := server.NewDatabase(t)
	errs := make(chan error, 4)
	dbs := make(chan *postgres.DB, 4)
	for range 4 {
		go func() {
			db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			errs <- err
			dbs <- db
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("open: %v", err)
		}
		db := <-dbs
		t.Cleanup(func() { _ = db.Close() })
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	// Each migration applied once: one row per version, none twice.
	var rows, versions int
	err = conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM responder_schema`).Scan(&rows, &versions)
	if err != nil || rows != versions || versions < 2 {
		t.Errorf("schema rows %d for %d versions (%v), want each of the versions (at least 2) once", rows, versions, err)
	}
}

// Two replicas that receive the same group at the same moment open one
// incident: the second write collides on the index of open incidents, runs
// again, and finds the first's. Their idempotency records hold the same way.
func TestReplicasOpenOneIncidentPerGroup(t *testing.T) {
	dsn := server.NewDatabase(t)
	var replicas []*postgres.DB
	for range 3 {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		replicas = append(replicas, db)
	}
	const groups, perReplica = 5, 8
	ingest := func(db *postgres.DB, group string) (string, error) {
		var id string
		err := db.Update(context.Background(), func(tx store.Tx) error {
			inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, group)
			switch {
			case err == nil && inc.Status != store.StatusResolved:
				id = inc.ID
				inc.AlertsTotal++
				return tx.PutIncident(inc)
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
			if id, err = tx.NextIncidentID(); err != nil {
				return err
			}
			inc = storetest.NewIncident(id, store.StatusOpen, store.SourceAlertmanager, group)
			inc.AlertsTotal = 1
			return tx.PutIncident(inc)
		})
		return id, err
	}
	var wg sync.WaitGroup
	ids := make([][]string, len(replicas))
	errs := make(chan error, len(replicas)*groups*perReplica)
	for r, db := range replicas {
		ids[r] = make([]string, groups*perReplica)
		wg.Go(func() {
			for i := range groups * perReplica {
				id, err := ingest(db, fmt.Sprintf("group\x00%d", i%groups))
				if err != nil {
					errs <- err
				}
				ids[r][i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ingest: %v", err)
	}
	storetest.View(t, replicas[0], func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		if len(open) != groups {
			t.Errorf("%d open incidents for %d groups: %v", len(open), groups, storetest.IDs(open))
		}
		total := 0
		for _, inc := range open {
			total += inc.AlertsTotal
		}
		if want := len(replicas) * groups * perReplica; total != want {
			t.Errorf("alerts counted %d, want %d: a write was lost or doubled", total, want)
		}
		return nil
	})
}

// The database going away: writes and reads fail as ErrUnavailable (the API
// answers 503 with Retry-After), Ready says so, nothing is half-written,
// and once the database is back the same store works again, without being
// reopened; what was committed before the crash is there.
func TestDatabaseGoingAway(t *testing.T) {
	dsn := server.NewDatabase(t)
	db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	storetest.PutIncidents(t, db, storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))

	if err := server.Crash(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = server.Resume()
		}
	})
	if err := db.Ready(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ready while down = %v, want ErrUnavailable", err)
	}
	err = db.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutIncident(storetest.NewIncident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Update while down = %v, want ErrUnavailable", err)
	}
	if err := db.View(context.Background(), func(tx store.Tx) error { _, err := tx.Incident("INC-1"); return err }); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("View while down = %v, want ErrUnavailable", err)
	}

	if err := server.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := db.Ready(); err != nil {
		t.Errorf("Ready after the restart: %v", err)
	}
	storetest.PutIncidents(t, db, storetest.NewIncident("INC-3", store.StatusOpen, store.SourceManual, "INC-3"))
	storetest.View(t, db, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if got := storetest.IDs(open); err != nil || fmt.Sprint(got) != "[INC-3 INC-1]" {
			t.Errorf("after the restart: %v (%v), want INC-3 and INC-1, and no INC-2", got, err)
		}
		return nil
	})
}

// One holder at a time: another gets 0 while the lease runs; renewing keeps
// the fencing number; once it expires another takes it with a greater one,
// and the first holder's checks fail from then on.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, server.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	check := func(token uint64) error {
		return db.Update(ctx, func(tx store.Tx) error { return tx.(store.LeaseTx).CheckLease("outbox", token) })
	}
	a, err := db.HoldLease(ctx, "outbox", "replica-a", time.Hour)
	if err != nil || a == 0 {
		t.Fatalf("a takes a free lease: %d, %v", a, err)
	}
	if b, err := db.HoldLease(ctx, "outbox", "replica-b", time.Hour); err != nil || b != 0 {
		t.Fatalf("b while a holds it: %d, %v; want 0", b, err)
	}
	if again, err := db.HoldLease(ctx, "outbox", "replica-a", time.Hour); err != nil || again != a {
		t.Fatalf("a renews: %d, %v; want the same token %d", again, err, a)
	}
	if err := check(a); err != nil {
		t.Fatalf("a's check while it holds the lease: %v", err)
	}
	// a renews with no time left: the lease has expired at once.
	if _, err := db.HoldLease(ctx, "outbox", "replica-a", 0); err != nil {
		t.Fatal(err)
	}
	b, err := db.HoldLease(ctx, "outbox", "replica-b", time.Hour)
	if err != nil || b <= a {
		t.Fatalf("b after a's lease expired: %d, %v; want a token above %d", b, err, a)
	}
	if err := check(a); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a's check after b took over = %v, want ErrLeaseLost", err)
	}
	if err := check(b); err != nil {
		t.Errorf("b's check: %v", err)
	}
	if got, err := db.HoldLease(ctx, "outbox", "replica-a", time.Hour); err != nil || got != 0 {
		t.Errorf("a while b holds it: %d, %v; want 0", got, err)
	}
}
