package incident

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// The dead-man's switch. Monitoring can die silently: a heartbeat is
// something that must ping at least every interval (Alertmanager's Watchdog
// alert, which fires for as long as the pipeline works, or a job that calls
// POST /api/v1/heartbeats/NAME). A heartbeat's pings never open incidents;
// its silence does: "monitoring is silent: NAME", resolved when the pings
// come back.

// Ping records a ping of the heartbeat name, in one durable write, and
// resolves its silence incident if one is open.
func (s *Service) Ping(ctx context.Context, name, by string) error {
	h, ok := s.heartbeat(name)
	if !ok {
		return &Error{Kind: NotFound, Msg: fmt.Sprintf("no heartbeat %q is configured (heartbeats[].name)", integrations.Shorten(name, 64))}
	}
	return s.write(ctx, func(tx *txn) error { return s.ping(tx, h, s.now(), by) })
}

func (s *Service) heartbeat(name string) (policy.Heartbeat, bool) {
	if s.policy == nil {
		return policy.Heartbeat{}, false
	}
	for _, h := range s.policy.Heartbeats {
		if h.Name == name {
			return h, true
		}
	}
	return policy.Heartbeat{}, false
}

// ping records one ping of h at now, inside tx.
func (s *Service) ping(tx *txn, h policy.Heartbeat, now time.Time, by string) error {
	st, err := tx.Heartbeat(h.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		st = &store.Heartbeat{Name: h.Name}
	case err != nil:
		return err
	}
	st.LastPing, st.Pings = now, st.Pings+1
	if err := tx.PutHeartbeat(st); err != nil {
		return err
	}
	inc, err := tx.LatestByDedupKey(store.SourceHeartbeat, h.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case inc.Status == store.StatusResolved:
		return nil
	}
	ch := s.changeOf(tx, inc, now)
	if err := ch.resolve(by, "pings resumed: "+h.Name+" pinged at "+now.Format(timeFormat)); err != nil {
		return err
	}
	return ch.save()
}

// CheckHeartbeats opens an incident for each heartbeat silent at now that
// has none open. The decision is made again inside each write, so that
// replicas checking at the same time open one incident.
func (s *Service) CheckHeartbeats(ctx context.Context) error {
	if s.policy == nil {
		return nil
	}
	var errs []error
	for _, h := range s.policy.Heartbeats {
		err := s.write(ctx, func(tx *txn) error {
			now := s.now()
			var last time.Time
			st, err := tx.Heartbeat(h.Name)
			switch {
			case err == nil:
				last = st.LastPing
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			silent, since := h.Silent(last, s.started, now)
			if !silent {
				return nil
			}
			inc, err := tx.LatestByDedupKey(store.SourceHeartbeat, h.Name)
			if err == nil && inc.Status != store.StatusResolved {
				return nil // silent, and said so already
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return s.openSilence(tx, h, last, since, now)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("heartbeat %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) openSilence(tx *txn, h policy.Heartbeat, last, since, now time.Time) error {
	desc := fmt.Sprintf("The heartbeat %s has not pinged since %s: it is expected at least every %s (grace %s), and went silent at %s. "+
		"Whatever it watches may be failing unseen: check the monitoring pipeline (Prometheus, Alertmanager, the job that pings).",
		h.Name, "the daemon started", h.Interval, h.Grace, since.Format(timeFormat))
	if !last.IsZero() {
		desc = fmt.Sprintf("The heartbeat %s last pinged at %s: it is expected at least every %s (grace %s), and went silent at %s. "+
			"Whatever it watches may be failing unseen: check the monitoring pipeline (Prometheus, Alertmanager, the job that pings).",
			h.Name, last.Format(timeFormat), h.Interval, h.Grace, since.Format(timeFormat))
	}
	ch, err := s.open(tx, now, &store.Incident{
		Title:       "monitoring is silent: " + h.Name,
		Description: desc,
		Severity:    h.Severity.String(),
		Source:      store.SourceHeartbeat,
		DedupKey:    h.Name,
		Kind:        "heartbeat:" + h.Name,
		Labels:      map[string]string{"heartbeat": h.Name},
		Team:        h.Team,
	})
	if err != nil {
		return err
	}
	if err := ch.opened(store.KindOpened, "responder"); err != nil {
		return err
	}
	return ch.save()
}
