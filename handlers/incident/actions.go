package incident

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// Follow-up action items: what an incident's review decided someone does
// ("add protection against cluster deletion"), owned until done or
// dropped, reminded to the owner in the incident's thread when overdue.

// Limits of action items.
const (
	MaxLink = 2048
	// maxActionList bounds one list of action items.
	maxActionList = 1000
	// DefaultActionRemindEvery is how often an overdue action item is
	// reminded to its owner.
	DefaultActionRemindEvery = 24 * time.Hour
	dueLayout                = "2006-01-02"
)

// ActionItemView is an action item as people see it: overdue when its due
// date has passed in the display zone and it is still open.
type ActionItemView struct {
	store.ActionItem
	Overdue bool `json:"overdue"`
}

// viewOf is the action item as people see it at now.
func (s *Service) viewOf(a store.ActionItem, now time.Time) ActionItemView {
	return ActionItemView{ActionItem: a, Overdue: s.overdue(&a, now)}
}

// overdue reports whether a is open past the end of its due date (in the
// display zone, else UTC).
func (s *Service) overdue(a *store.ActionItem, now time.Time) bool {
	if a.State != store.ActionOpen || a.Due == "" {
		return false
	}
	loc := s.zone()
	if loc == nil {
		loc = time.UTC
	}
	day, err := time.ParseInLocation(dueLayout, a.Due, loc)
	if err != nil {
		return false
	}
	return !now.Before(day.AddDate(0, 0, 1))
}

// ActionItemRequest adds an action item to an incident.
type ActionItemRequest struct {
	Title string `json:"title"`
	Owner string `json:"owner"`
	Due   string `json:"due"`  // a date, 2026-12-24; optional
	Link  string `json:"link"` // the tracker's issue; optional
	By    string `json:"by"`
}

// checkDue checks a due date: empty, or a date like 2026-12-24.
func checkDue(due string) error {
	if due == "" {
		return nil
	}
	if _, err := time.Parse(dueLayout, due); err != nil {
		return invalid("due", "%q is not a date like 2026-12-24", integrations.Shorten(due, 32))
	}
	return nil
}

// checkLink checks a tracker link: empty, or an absolute http(s) URL.
func checkLink(link string) error {
	if link == "" {
		return nil
	}
	if err := CheckText("link", link, MaxLink, false); err != nil {
		return err
	}
	if u, err := url.Parse(link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("link", "%q is not an absolute http(s) URL", integrations.Shorten(link, 64))
	}
	return nil
}

// AddActionItem adds an open action item to the incident id, in its
// timeline and its thread, and returns it.
func (s *Service) AddActionItem(ctx context.Context, id string, req ActionItemRequest, actor string) (*ActionItemView, error) {
	req.Title, req.Owner, req.Due, req.Link = strings.TrimSpace(req.Title), strings.TrimSpace(req.Owner), strings.TrimSpace(req.Due), strings.TrimSpace(req.Link)
	if err := CheckText("title", req.Title, MaxTitle, true); err != nil {
		return nil, err
	}
	if err := CheckText("owner", req.Owner, MaxLabelName, true); err != nil {
		return nil, err
	}
	if err := checkDue(req.Due); err != nil {
		return nil, err
	}
	if err := checkLink(req.Link); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	var item store.ActionItem
	_, err = s.changeIncident(ctx, id, func(ch *change) error {
		aid, err := ch.tx.NextActionItemID()
		if err != nil {
			return err
		}
		item = store.ActionItem{ID: aid, IncidentID: ch.inc.ID, Title: req.Title, Owner: req.Owner, Due: req.Due, Link: req.Link,
			State: store.ActionOpen, CreatedAt: ch.now, CreatedBy: by, UpdatedAt: ch.now}
		if err := ch.tx.PutActionItem(&item); err != nil {
			return err
		}
		return ch.announce(integrations.EventNote, store.KindActionItem, fmt.Sprintf("action item %s added by %s: %s (%s)", aid, by, req.Title, ownerDue(&item)), by)
	})
	if err != nil {
		return nil, err
	}
	v := s.viewOf(item, s.now())
	return &v, nil
}

// ownerDue says who owns an action item and by when.
func ownerDue(a *store.ActionItem) string {
	if a.Due == "" {
		return "owner " + a.Owner + ", no due date"
	}
	return "owner " + a.Owner + ", due " + a.Due
}

// ActionUpdate changes an action item: its state (open, done, wont_do; a
// reason is required to drop it or to open it again) or its details.
// Fields left out keep their value.
type ActionUpdate struct {
	State  *string `json:"state"`
	Title  *string `json:"title"`
	Owner  *string `json:"owner"`
	Due    *string `json:"due"` // "" clears it
	Link   *string `json:"link"`
	Reason string  `json:"reason"`
	By     string  `json:"by"`
}

// UpdateActionItem changes the action item id and says so in its
// incident's timeline and thread.
func (s *Service) UpdateActionItem(ctx context.Context, id string, req ActionUpdate, actor string) (*ActionItemView, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	var item store.ActionItem
	err = s.write(ctx, func(tx *txn) error {
		a, err := tx.ActionItem(id)
		if err != nil {
			return unknownAction(id, err)
		}
		inc, err := tx.Incident(a.IncidentID)
		if err != nil {
			return err
		}
		ch := s.changeOf(tx, inc, s.now())
		changes, err := applyUpdate(a, req, ch.now, by)
		if err != nil {
			return err
		}
		if err := tx.PutActionItem(a); err != nil {
			return err
		}
		item = *a
		if err := ch.announce(integrations.EventNote, store.KindActionItem,
			fmt.Sprintf("action item %s %q %s by %s", a.ID, a.Title, strings.Join(changes, ", "), by), by); err != nil {
			return err
		}
		return ch.save()
	})
	if err != nil {
		return nil, err
	}
	v := s.viewOf(item, s.now())
	return &v, nil
}

func (req *ActionUpdate) check() error {
	if req.State == nil && req.Title == nil && req.Owner == nil && req.Due == nil && req.Link == nil {
		return invalid("state", "nothing to change: give state, title, owner, due or link")
	}
	if req.State != nil {
		switch *req.State {
		case store.ActionOpen, store.ActionDone, store.ActionWontDo:
		default:
			return invalid("state", "%q: want open, done or wont_do", integrations.Shorten(*req.State, 32))
		}
	}
	if req.Title != nil {
		*req.Title = strings.TrimSpace(*req.Title)
		if err := CheckText("title", *req.Title, MaxTitle, true); err != nil {
			return err
		}
	}
	if req.Owner != nil {
		*req.Owner = strings.TrimSpace(*req.Owner)
		if err := CheckText("owner", *req.Owner, MaxLabelName, true); err != nil {
			return err
		}
	}
	if req.Due != nil {
		*req.Due = strings.TrimSpace(*req.Due)
		if err := checkDue(*req.Due); err != nil {
			return err
		}
	}
	if req.Link != nil {
		*req.Link = strings.TrimSpace(*req.Link)
		if err := checkLink(*req.Link); err != nil {
			return err
		}
	}
	return CheckText("reason", req.Reason, MaxText, false)
}

// applyUpdate changes a as req asks and says what changed; a change of
// nothing is a conflict.
func applyUpdate(a *store.ActionItem, req ActionUpdate, now time.Time, by string) ([]string, error) {
	var changes []string
	reason := strings.TrimSpace(req.Reason)
	if req.State != nil && *req.State != a.State {
		switch *req.State {
		case store.ActionDone:
			changes = append(changes, "done")
		case store.ActionWontDo:
			if reason == "" {
				return nil, invalid("reason", "required: say why it will not be done")
			}
			changes = append(changes, "dropped (won't do): "+reason)
		default:
			if reason == "" {
				return nil, invalid("reason", "required: say why it is open again")
			}
			changes = append(changes, "open again: "+reason)
		}
		a.State, a.Reason = *req.State, ""
		a.ClosedAt, a.ClosedBy = nil, ""
		if a.State != store.ActionOpen {
			t := now
			a.ClosedAt, a.ClosedBy = &t, by
			if a.State == store.ActionWontDo {
				a.Reason = reason
			}
		}
	}
	set := func(field string, to *string, cur *string) {
		if to != nil && *to != *cur {
			*cur = *to
			if *to == "" {
				changes = append(changes, field+" cleared")
			} else {
				changes = append(changes, field+" set to "+*to)
			}
		}
	}
	set("title", req.Title, &a.Title)
	set("owner", req.Owner, &a.Owner)
	if req.Due != nil && *req.Due != a.Due {
		a.RemindedAt = nil // a new due date is reminded afresh
	}
	set("due date", req.Due, &a.Due)
	set("link", req.Link, &a.Link)
	if len(changes) == 0 {
		return nil, conflict("action item %s already is as asked (%s)", a.ID, a.State)
	}
	a.UpdatedAt = now
	return changes, nil
}

// ActionQuery selects action items, as people write it.
type ActionQuery struct {
	State    string
	Owner    string
	Incident string
	Overdue  string // "true": only the overdue ones
	Limit    string
}

// ActionItems lists action items across incidents, oldest first.
func (s *Service) ActionItems(ctx context.Context, q ActionQuery) ([]ActionItemView, error) {
	f := store.ActionFilter{State: q.State, Owner: q.Owner, Incident: q.Incident, Limit: maxActionList}
	switch q.State {
	case "", store.ActionOpen, store.ActionDone, store.ActionWontDo:
	default:
		return nil, invalid("state", "%q: want open, done or wont_do", integrations.Shorten(q.State, 32))
	}
	if q.Incident != "" && !ValidID(q.Incident) {
		return nil, invalid("incident", "%q is not an incident id like INC-42", integrations.Shorten(q.Incident, 32))
	}
	onlyOverdue := false
	switch q.Overdue {
	case "":
	case "true":
		onlyOverdue = true
		f.State = store.ActionOpen
	default:
		return nil, invalid("overdue", "%q: want true, or leave it out", integrations.Shorten(q.Overdue, 32))
	}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > maxActionList {
			return nil, invalid("limit", "%q: want 1 to %d", integrations.Shorten(q.Limit, 32), maxActionList)
		}
		f.Limit = n
		if onlyOverdue {
			f.Limit = maxActionList
		}
	}
	var items []store.ActionItem
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		items, err = tx.ActionItems(f)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []ActionItemView{}
	for _, a := range items {
		v := s.viewOf(a, now)
		if onlyOverdue && !v.Overdue {
			continue
		}
		out = append(out, v)
	}
	if onlyOverdue && q.Limit != "" {
		if n, _ := strconv.Atoi(q.Limit); len(out) > n {
			out = out[:n]
		}
	}
	return out, nil
}

// ActionItem is the action item id.
func (s *Service) ActionItem(ctx context.Context, id string) (*ActionItemView, error) {
	var a *store.ActionItem
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.ActionItem(id)
		return err
	})
	if err != nil {
		return nil, unknownAction(id, err)
	}
	v := s.viewOf(*a, s.now())
	return &v, nil
}

// RemindOverdue reminds the owner of every overdue action item, in its
// incident's thread, at most once per ActionRemindEvery (decided again in
// the write, so that replicas or passes running together remind once).
func (s *Service) RemindOverdue(ctx context.Context) error {
	every := s.cfg.ActionRemindEvery
	if every <= 0 {
		return nil
	}
	var open []store.ActionItem
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		open, err = tx.ActionItems(store.ActionFilter{State: store.ActionOpen})
		return err
	})
	if err != nil {
		return err
	}
	now := s.now()
	var errs []error
	for i := range open {
		if !s.remindDue(&open[i], now, every) {
			continue
		}
		var drill, posted bool
		err := s.write(ctx, func(tx *txn) error {
			posted = false
			a, err := tx.ActionItem(open[i].ID)
			if err != nil || !s.remindDue(a, now, every) {
				return err
			}
			inc, err := tx.Incident(a.IncidentID)
			if err != nil {
				return err
			}
			drill = inc.Drill
			t := now
			a.RemindedAt = &t
			if err := tx.PutActionItem(a); err != nil {
				return err
			}
			ch := s.changeOf(tx, inc, now)
			text := fmt.Sprintf("action item %s %q was due %s and is still open: close it (done or won't do) or give it a new date at %s",
				a.ID, a.Title, a.Due, s.url(inc.ID)+"#action-items")
			if err := ch.remind(text, a.Owner); err != nil {
				return err
			}
			posted = true
			return ch.save()
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("remind %s: %w", open[i].ID, err))
			continue
		}
		if posted {
			s.metrics.reminders.WithLabelValues("action_item", strconv.FormatBool(drill)).Inc()
		}
	}
	return errors.Join(errs...)
}

// remindDue reports whether a is overdue and not reminded within every.
func (s *Service) remindDue(a *store.ActionItem, now time.Time, every time.Duration) bool {
	return s.overdue(a, now) && (a.RemindedAt == nil || now.Sub(*a.RemindedAt) >= every)
}

// actionCounts reports the action items by state, and the overdue ones,
// read from the store at scrape time, so that every replica reports all.
type actionCounts struct{ s *Service }

var (
	actionItemsDesc = prometheus.NewDesc("responder_action_items",
		"Follow-up action items, by state (open, done, wont_do).", []string{"state"}, nil)
	actionOverdueDesc = prometheus.NewDesc("responder_action_items_overdue",
		"Open action items past their due date.", nil, nil)
)

func (a actionCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- actionItemsDesc
	ch <- actionOverdueDesc
}

func (a actionCounts) Collect(ch chan<- prometheus.Metric) {
	var items []store.ActionItem
	err := a.s.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		items, err = tx.ActionItems(store.ActionFilter{})
		return err
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(actionItemsDesc, err)
		return
	}
	now := a.s.now()
	counts := map[string]int{store.ActionOpen: 0, store.ActionDone: 0, store.ActionWontDo: 0}
	overdue := 0
	for i := range items {
		counts[items[i].State]++
		if a.s.overdue(&items[i], now) {
			overdue++
		}
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(actionItemsDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(actionOverdueDesc, prometheus.GaugeValue, float64(overdue))
}
