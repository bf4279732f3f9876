package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/responder-sre/responder/store"
)

// load reads pending intents committed since the last load, through the
// pending index, and every RescanEvery compares the whole pending index
// with what it holds (see rescan). An intent that cannot be decoded is
// logged and taken out of the pending index, so that it neither stops the
// others nor comes back.
func (d *Dispatcher) load() error {

	const page = 1000
	for {
		var batch []store.Intent
		var bad *store.UndecodableError
		err := d.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			batch, err = tx.PendingIntents(d.lastSeq, page)
			if errors.As(err, &bad) {
				return nil // the others are read all the same
			}
			return err
		})
		if err != nil {
			return err
		}
		nbad := 0
		if bad != nil {
			nbad = len(bad.Seqs)
			for i, seq := range bad.Seqs {
				d.lastSeq = max(d.lastSeq, seq)
				d.undecodable(seq, bad.Errs[i])
			}
		}
		for i := range batch {
			d.lastSeq = max(d.lastSeq, batch[i].Seq)
			d.take(&batch[i])
		}
		d.depth.Store(int64(len(d.pending)))
		if len(batch)+nbad < page {
			break
		}
	}
	if now := d.now(); !now.Before(d.rescanAt) {
		d.rescanAt = now.Add(d.cfg.RescanEvery)
		if err := d.rescan(); err != nil {
			return err
		}
	}
	return d.skipUndecodable()
}

// skipUndecodable takes the intents that cannot be decoded out of the
// pending index; on failure they are kept and tried on the next load.
func (d *Dispatcher) skipUndecodable() error {
	if len(d.skip) == 0 {
		return nil
	}
	err := d.store.Update(context.Background(), func(tx store.Tx) error {
		for _, seq := range d.skip {
			if err := tx.SkipIntent(seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("skip undecodable intents: %w", err)
	}
	d.skip = nil
	return nil
}

// take holds a pending intent read from the store, unless it holds it
// already.
func (d *Dispatcher) take(in *store.Intent) {
	if _, known := d.pending[in.Seq]; known {
		return
	}
	d.add(in)
	// A Retry-After outlives a restart: hold its target again.
	if k := targetOf(in); in.HoldsTarget && in.NextAt.After(d.hold[k]) {
		d.hold[k] = in.NextAt
	}
}

// undecodable logs an intent that cannot be decoded and queues it to be
// taken out of the pending index.
func (d *Dispatcher) undecodable(seq uint64, err error) {
	if slices.Contains(d.skip, seq) {
		return
	}
	// The decoding error names a field and a type, never the stored text:
	// nothing of the message reaches the log.
	d.log.Error().Uint64("seq", seq).Err(err).
		Msg("outbox intent cannot be decoded: it is skipped and will not be delivered")
	d.sent.WithLabelValues("unknown", store.IntentFailed).Inc()
	d.skip = append(d.skip, seq)
}

// rescan reads the pending index as a set and takes every intent in it
// that the dispatcher does not hold. Reading only what follows the last
// sequence seen (load) assumes that intents become visible in sequence
// order, which holds for bbolt's single writer but not for a backend that
// commits transactions concurrently: there a lower sequence can commit
// after a higher one was read. Only sequences are read, then the intents
// missing, so a large backlog costs a walk of its keys.
func (d *Dispatcher) rescan() error {
	var missing []uint64
	err := d.store.View(context.Background(), func(tx store.Tx) error {
		seqs, err := tx.PendingSeqs(0, 0)
		for _, seq := range seqs {
			if _, known := d.pending[seq]; !known && !slices.Contains(d.skip, seq) {
				missing = append(missing, seq)
			}
		}
		return err
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	var found []*store.Intent
	err = d.store.View(context.Background(), func(tx store.Tx) error {
		for _, seq := range missing {
			in, err := tx.Intent(seq)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				d.undecodable(seq, err)
			case in.State == store.IntentPending:
				found = append(found, in)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, in := range found {
		d.lastSeq = max(d.lastSeq, in.Seq)
		d.take(in)
	}
	d.depth.Store(int64(len(d.pending)))
	return nil
}
