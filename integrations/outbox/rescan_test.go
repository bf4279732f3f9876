package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// A networked backend commits transactions concurrently, so an intent with
// a lower sequence can become visible after the dispatcher has read past
// it. The dispatcher compares the pending index with what it holds, as a
// set, and delivers it all the same.
func TestIntentVisibleOutOfOrderIsDelivered(t *testing.T) {
	log := &fakeNotifier{name: integrations.ChannelLog}
	note := store.Intent{Channel: integrations.ChannelLog, Target: "log", Event: integrations.EventNote}
	run(t, Config{RescanEvery: time.Second}, bolt.Options{}, []integrations.Notifier{log}, func(b *bubble) {
		t := b.t
		// The second intent "commits late": out of the pending index until
		// it is written again below.
		var late store.Intent
		id := b.incidentThen(func(tx store.Tx, queued []*store.Intent) error {
			late = *queued[1]
			hidden := late
			hidden.State = store.IntentFailed
			return tx.PutIntent(&hidden)
		}, note, note, note)
		b.after(100 * time.Millisecond)
		keys := func() (out []string) {
			for _, m := range log.called() {
				out = append(out, m.Key)
			}
			return out
		}
		if got := keys(); len(got) != 2 || got[0] != id+"/log/1" || got[1] != id+"/log/3" {
			t.Fatalf("delivered %v before the late intent, want the first and the third", got)
		}
		if err := b.db.Update(context.Background(), func(tx store.Tx) error { return tx.PutIntent(&late) }); err != nil {
			t.Fatal(err)
		}
		b.d.Kick() // a kick alone reads only past the last sequence seen
		b.after(100 * time.Millisecond)
		if got := keys(); len(got) != 2 {
			t.Fatalf("delivered %v at once; this test wants the late intent found by the rescan", got)
		}
		b.after(time.Second)
		if got := keys(); len(got) != 3 || got[2] != late.Key {
			t.Fatalf("delivered %v, want the late intent %s too", got, late.Key)
		}
	})
}
