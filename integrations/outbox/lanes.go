package outbox

import (
	"container/heap"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// lane is the pending intents of one incident, channel and target, in
// sequence order: they are delivered one at a time, in that order.
type lane struct {
	key   string
	queue []*store.Intent
	// busy: a delivery of the head is in flight, or its outcome is not yet
	// written; the lane is looked at again once the outcome is on disk.
	busy bool
	// blocked: due, but its channel had no free delivery slot; it is in
	// Dispatcher.waiting and not in the schedule.
	blocked bool
	due     time.Time // when to look at it next; the zero time is "at once"
	index   int       // its place in the schedule heap; -1 when not in it
}

func (l *lane) headSeq() uint64 {
	if len(l.queue) == 0 {
		return 0
	}
	return l.queue[0].Seq
}

// schedule is a min-heap of lanes by due time (container/heap).
type schedule []*lane

func (s schedule) Len() int { return len(s) }

// Less orders by due time, then by the head's sequence, so that of lanes
// due together (a Retry-After hold ending) the oldest message goes first.
func (s schedule) Less(i, j int) bool {
	if !s[i].due.Equal(s[j].due) {
		return s[i].due.Before(s[j].due)
	}
	return s[i].headSeq() < s[j].headSeq()
}

func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}

func (s *schedule) Push(x any) {
	l := x.(*lane)
	l.index = len(*s)
	*s = append(*s, l)
}

func (s *schedule) Pop() any {
	old := *s
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*s = old[:len(old)-1]
	return l
}

func laneOf(in *store.Intent) string {
	if integrations.IsPager(in.Channel) {
		// One alert per incident in the pager, whoever a call names: the
		// page that creates it goes before a responder added to it, a
		// note on it, its close.
		return in.IncidentID + "\x00" + in.Channel
	}
	return in.IncidentID + "\x00" + in.Channel + "\x00" + in.Target
}

// targetOf is what a vendor's Retry-After speaks for: a Slack channel, an
// email list, the vendor's API.
func targetOf(in *store.Intent) string {
	return in.Channel + "\x00" + in.Target
}

// add takes a pending intent into its lane, in sequence order. A lane
// that was empty is looked at at once.
func (d *Dispatcher) add(in *store.Intent) {
	d.pending[in.Seq] = in
	key := laneOf(in)
	l := d.lanes[key]
	if l == nil {
		l = &lane{key: key, index: -1}
		d.lanes[key] = l
	}
	// In sequence order: a backend that commits concurrently can make a
	// lower sequence visible after a higher one. The head in flight stays
	// first; order with it is what it was when it started.
	at := len(l.queue)
	for at > 0 && l.queue[at-1].Seq > in.Seq && (at > 1 || !l.busy) {
		at--
	}
	l.queue = slices.Insert(l.queue, at, in)
	if in.After != 0 {
		d.waiters[in.After] = append(d.waiters[in.After], in)
	}
	if len(l.queue) == 1 && !l.busy {
		d.schedule(l, time.Time{})
	}
}

// remove drops a finished intent (its outcome written) and wakes the lanes
// whose head waited for it.
func (d *Dispatcher) remove(in *store.Intent) {
	delete(d.pending, in.Seq)
	if in.After != 0 {
		ws := slices.DeleteFunc(d.waiters[in.After], func(w *store.Intent) bool { return w == in })
		if len(ws) == 0 {
			delete(d.waiters, in.After)
		} else {
			d.waiters[in.After] = ws
		}
	}
	for _, w := range d.waiters[in.Seq] {
		if l := d.lanes[laneOf(w)]; l != nil && !l.busy {
			d.schedule(l, time.Time{})
		}
	}
}

// schedule makes the lane due at t, or keeps it due earlier when it
// already is: looking at a lane too early only schedules it again.
func (d *Dispatcher) schedule(l *lane, t time.Time) {
	if l.blocked {
		return // looked at as soon as its channel has a free slot
	}
	if l.index >= 0 {
		if t.Before(l.due) {
			l.due = t
			heap.Fix(&d.sched, l.index)
		}
		return
	}
	l.due = t
	heap.Push(&d.sched, l)
}

// startDue starts the head of every lane that is due and allowed to go,
// and returns when the next one becomes due (zero for never). It looks
// only at the lanes that are due: those waiting for a delivery slot of
// their channel (while slots are free), then the schedule's due ones.
func (d *Dispatcher) startDue(ctx context.Context) time.Time {
	if ctx.Err() != nil {
		return time.Time{} // stopping: start nothing new
	}
	now := d.now()
	d.updateOldest(now)
	var channels []string // in order, so that no channel's lanes always go last
	if len(d.waiting) > 0 {
		channels = slices.Sorted(maps.Keys(d.waiting))
	}
	for _, ch := range channels {
		ls := d.waiting[ch]
		for len(ls) > 0 && d.inFlight[ch] < d.cfg.Concurrency {
			l := ls[0]
			ls[0] = nil
			ls = ls[1:]
			l.blocked = false
			d.visit(ctx, l, now)
		}
		if len(ls) == 0 {
			delete(d.waiting, ch)
		} else {
			d.waiting[ch] = ls
		}
	}
	for len(d.sched) > 0 && !d.sched[0].due.After(now) {
		d.visit(ctx, heap.Pop(&d.sched).(*lane), now)
	}
	if len(d.sched) > 0 {
		return d.sched[0].due
	}
	return time.Time{}
}

// visit looks at a due lane's head: it starts it, or schedules the lane
// for when it may go, or leaves it to be woken (busy, waiting for a slot).
func (d *Dispatcher) visit(ctx context.Context, l *lane, now time.Time) {
	if l.busy {
		// In flight, or finished and its outcome not yet written: the lane
		// waits, so nothing is sent twice or out of order. Writing the
		// outcome schedules it again.
		return
	}
	if len(l.queue) == 0 {
		delete(d.lanes, l.key)
		return
	}
	in := l.queue[0]
	if in.After != 0 && d.pending[in.After] != nil {
		// Wait for the intent it depends on (the Zoom bridge), but not
		// for long: the announcement matters more than its link. Its
		// outcome being written wakes the lane earlier.
		if until := in.CreatedAt.Add(d.cfg.DependencyWait); now.Before(until) {
			d.schedule(l, until)
			return
		}
	}
	if now.Sub(in.CreatedAt) > d.cfg.MaxAge {
		d.expire(in, l)
		return
	}
	if in.NextAt.After(now) {
		d.schedule(l, in.NextAt)
		return
	}
	if d.inFlight[in.Channel] >= d.cfg.Concurrency {
		l.blocked = true // a delivery finishing frees a slot
		d.waiting[in.Channel] = append(d.waiting[in.Channel], l)
		return
	}
	if until := d.hold[targetOf(in)]; until.After(now) {
		d.schedule(l, until) // the vendor asked the whole target to wait
		return
	}
	if in.Channel == integrations.ChannelSlack {
		// One message at a time per channel, and the rate counted from the
		// previous answer (see finish): Slack measures the gap between
		// arrivals, which a count from the start of each send would let
		// jitter below 1/rate.
		if d.slackSending[in.Target] {
			d.schedule(l, now.Add(d.slackGap()))
			return
		}
		if tokens := d.limiter(in.Target).TokensAt(now); tokens < 1 {
			d.schedule(l, now.Add(time.Duration((1-tokens)*float64(d.slackGap()))))
			return
		}
	}
	group := []*store.Intent{in}
	switch {
	case in.AttemptAt != nil:
		group = doubtGroup(l) // the message that may exist, as it was
	case in.Channel == integrations.ChannelSlack && in.Event == integrations.EventAlertJoined:
		group = d.collapse(l, now)
	}
	d.start(ctx, l, group)
}

// doubtGroup is the head in doubt and the intents that went into the same
// message with it (collapsed alert_joined replies).
func doubtGroup(l *lane) []*store.Intent {
	head := l.queue[0]
	group := []*store.Intent{head}
	for _, in := range l.queue[1:] {
		if in.AttemptAt == nil || in.AttemptKey != head.AttemptKey || in.State != store.IntentPending {
			break
		}
		group = append(group, in)
	}
	return group
}

// updateOldest sets the oldest-pending gauge from the lanes' first pending
// intents, at most once a second (the gauge need not be fresher, and a pass
// must not cost every lane).
func (d *Dispatcher) updateOldest(now time.Time) {
	if len(d.pending) == 0 {
		d.oldest.Store(0)
		return
	}
	if now.Sub(d.oldestAt) < time.Second && now.After(d.oldestAt) {
		return
	}
	d.oldestAt = now
	var oldest int64
	for _, l := range d.lanes {
		for _, in := range l.queue {
			if in.State != store.IntentPending {
				continue
			}
			if t := in.CreatedAt.UnixNano(); oldest == 0 || t < oldest {
				oldest = t
			}
			break
		}
	}
	d.oldest.Store(oldest)
}

// collapse gathers the alert_joined intents that follow the head in its
// lane, due and uninterrupted by other events, into one delivery.
func (d *Dispatcher) collapse(l *lane, now time.Time) []*store.Intent {
	group := []*store.Intent{l.queue[0]}
	for _, in := range l.queue[1:] {
		if len(group) >= d.cfg.CollapseMax {
			break
		}
		if in.Event != integrations.EventAlertJoined || in.NextAt.After(now) || in.State != store.IntentPending {
			break
		}
		group = append(group, in)
	}
	return group
}
