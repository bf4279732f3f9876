//go:build unix

package main

// A 2xx means the write is on disk. kill -9 cannot show that (the page cache
// outlives the process), so two other proofs: here, in process, that the
// HTTP answer is not written while the store's Update has not returned
// (neither inside the transaction nor after its commit); and, under strace,
// that the fdatasync of each request's commit precedes its answer
// (fsync_strace_test.go).

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// gatedStore is the real store with two gates on the first write: inside
// its transaction (before the commit), and after Update returned from the
// commit (before the handler sees it).
type gatedStore struct {
	*bolt.DB
	once, inTxOnce   sync.Once
	inTx, committed  chan struct{}
	leaveTx, release chan struct{}
}

func (g *gatedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return g.DB.Update(ctx, fn)
	}
	err := g.DB.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		g.inTxOnce.Do(func() { close(g.inTx) }) // fn may run again if its batch is retried
		<-g.leaveTx
		return nil
	})
	close(g.committed)
	<-g.release
	return err
}

// TestAnswerWaitsForDurableCommit: the webhook's 202 is not written while
// the transaction holding it is open, nor after its commit until Update
// returns; it is written once Update returned.
func TestAnswerWaitsForDurableCommit(t *testing.T) {
	b, err := loadConfig("", configs.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), dbFile), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	g := &gatedStore{DB: db, inTx: make(chan struct{}), committed: make(chan struct{}),
		leaveTx: make(chan struct{}), release: make(chan struct{})}
	svc := incident.New(b.incidents, incident.Deps{Store: g, Policy: b.policy, Log: zerolog.Nop(), Now: time.Now})
	srv := handlers.New(b.handlers, handlers.Deps{Incidents: svc, Log: zerolog.Nop(), Now: time.Now})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(func() { // never leave the writer blocked on a failed test
		for _, c := range []chan struct{}{g.leaveTx, g.release} {
			select {
			case <-c:
			default:
				close(c)
			}
		}
	})

	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/api/v1/alerts/alertmanager", "application/json", bytes.NewReader(amBody(&crashGroup{
			key: `{}:{alertname="Durable"}`, name: "Durable", fingerprints: []string{"00000000d0000001"},
			labels: map[string]string{"alertname": "Durable", "severity": "critical"},
		}, "firing")))
		if err != nil {
			answered <- 0
			return
		}
		_ = resp.Body.Close()
		answered <- resp.StatusCode
	}()

	// noAnswer fails if the client has its answer within a moment: the
	// wait bounds a negative, it times nothing.
	noAnswer := func(where string) {
		t.Helper()
		select {
		case code := <-answered:
			t.Fatalf("answered %d %s", code, where)
		case <-time.After(300 * time.Millisecond):
		}
	}
	wait := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not happen within 10s", what)
		}
	}
	wait(g.inTx, "the webhook's write")
	noAnswer("while its transaction was still open")
	close(g.leaveTx)
	wait(g.committed, "the commit")
	noAnswer("after the commit but before Update returned")
	close(g.release)
	select {
	case code := <-answered:
		if code != http.StatusAccepted {
			t.Fatalf("answered %d, want 202", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10s of Update returning")
	}
}
