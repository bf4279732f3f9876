package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// MarkInDoubt marks every Slack delivery still pending in a store restored
// from a backup as in doubt, as of now. The backup was taken while the
// daemon kept delivering: a message pending in the copy may have reached
// Slack before the original was lost, and Slack can be asked (the
// dispatcher looks for the key the message carries) before it is posted
// again. The other channels are left pending as they were: they cannot be
// asked, the pagers fold a repeat themselves (an alias or dedup key), and
// a page still pending must stay cancellable should its incident resolve
// first. It returns how many it marked; an intent that cannot be read is
// left as it is, for the dispatcher to skip.
func MarkInDoubt(ctx context.Context, db Store, now time.Time) (int, error) {
	const page = 500
	marked := 0
	var after uint64
	for {
		var n int
		var last uint64
		err := db.Update(ctx, func(tx store.Tx) error {
			n, last = 0, after
			ins, err := tx.PendingIntents(after, page)
			var undecodable *store.UndecodableError
			if err != nil && !errors.As(err, &undecodable) {
				return err
			}
			if undecodable != nil {
				last = max(last, undecodable.Seqs[len(undecodable.Seqs)-1])
			}
			for i := range ins {
				in := &ins[i]
				last = max(last, in.Seq)
				if in.Channel != integrations.ChannelSlack || in.AttemptAt != nil {
					continue // cannot be asked, or in doubt already
				}
				at := now
				in.AttemptAt, in.AttemptKey = &at, in.Key
				if err := tx.PutIntent(in); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return marked, fmt.Errorf("mark the restored deliveries in doubt: %w", err)
		}
		marked += n
		if last == after {
			return marked, nil
		}
		after = last
	}
}
