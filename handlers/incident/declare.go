package incident

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// View is an incident as people see it: the document with its alerts,
// timeline and notification states.
type View struct {
	*store.Incident
	// Report gives how long each step of the process took (drills above
	// all): to acknowledge, to roles, to the first update, to resolve.
	Report *Report `json:"report"`
	// Checklist is the incident's checklist with each marked step timed
	// from the start (it stands for the stored one in the JSON).
	Checklist []StepView `json:"checklist"`
	// ActionItems are the incident's follow-up actions.
	ActionItems []ActionItemView `json:"action_items"`
	// Postmortem is the stored post-mortem's state; nil when none is
	// stored.
	Postmortem    *PostmortemSummary `json:"postmortem"`
	Alerts        []store.Alert      `json:"alerts"`
	Timeline      []store.Entry      `json:"timeline"`
	Notifications []store.Intent     `json:"notifications"`
}

func (s *Service) loadView(tx store.Tx, id string) (*View, error) {
	inc, err := tx.Incident(id)
	if err != nil {
		return nil, err
	}
	steps, err := tx.Checklist(inc.ID)
	if err != nil {
		return nil, err
	}
	report, err := reportOf(tx, inc, steps)
	if err != nil {
		return nil, err
	}
	v := &View{Incident: inc, Report: report, Checklist: checklistOf(inc.CreatedAt, steps)}
	if v.Alerts, err = tx.Alerts(id); err != nil {
		return nil, err
	}
	if v.Notifications, err = tx.IncidentIntents(id); err != nil {
		return nil, err
	}
	if v.Timeline, err = tx.Timeline(id); err != nil {
		return nil, err
	}
	items, err := tx.ActionItems(store.ActionFilter{Incident: inc.ID})
	if err != nil {
		return nil, err
	}
	switch p, err := tx.Postmortem(inc.ID); {
	case err == nil:
		v.Postmortem = &PostmortemSummary{Postmortem: *p}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	now := s.now()
	v.ActionItems = make([]ActionItemView, 0, len(items))
	for _, a := range items {
		v.ActionItems = append(v.ActionItems, s.viewOf(a, now))
	}
	return v, nil
}

// Get is the incident with this id, with its alerts, timeline and
// notifications.
func (s *Service) Get(ctx context.Context, id string) (*View, error) {
	var view *View
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		view, err = s.loadView(tx, id)
		return err
	})
	if err != nil {
		return nil, unknownIncident(id, err)
	}
	return view, nil
}

// Limits on what people may send. Webhooks are bounded by the body limit
// and MaxKey only, so that no sender's alert is refused for its size.
const (
	MaxTitle      = 500
	MaxText       = 20000
	MaxLabels     = 64
	MaxLabelName  = 128
	MaxLabelValue = 1024
	// MaxKey bounds what becomes a store key (a group key, an alias).
	MaxKey         = 16 << 10
	defaultListLen = 50
	MaxListLen     = 500
	// maxListScan bounds the incidents one list request reads; past it the
	// answer carries "next" to continue from.
	maxListScan = 10000
)

// ValidID reports whether s looks like INC-<n>.
func ValidID(s string) bool {
	n, ok := strings.CutPrefix(s, "INC-")
	if !ok || n == "" || n[0] == '0' || len(n) > 19 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CheckText checks a text field: present when required, valid UTF-8, at
// most limit bytes. The error is Invalid and names the field.
func CheckText(field, v string, limit int, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return invalid(field, "required")
	case !utf8.ValidString(v):
		return invalid(field, "not valid UTF-8")
	case len(v) > limit:
		return invalid(field, "%d bytes, at most %d allowed", len(v), limit)
	}
	return nil
}

func checkLabels(field string, lbls map[string]string) error {
	if len(lbls) > MaxLabels {
		return invalid(field, "%d labels, at most %d allowed", len(lbls), MaxLabels)
	}
	for k, v := range lbls {
		if k == "" {
			return invalid(field, "label names must not be empty")
		}
		if err := CheckText(field+"."+k, k, MaxLabelName, true); err != nil {
			return err
		}
		if err := CheckText(field+"."+k, v, MaxLabelValue, false); err != nil {
			return err
		}
	}
	return nil
}

// who is the person acting: the named field when given, else actor (the
// name of the credential the front door authenticated). Without either
// (no tokens configured) the field is required, so that every write
// records a person.
func who(field, by, actor string) (string, error) {
	if by = strings.TrimSpace(by); by != "" {
		return by, CheckText(field, by, MaxLabelName, false)
	}
	if actor != "" {
		return actor, nil
	}
	return "", invalid(field, "required: say who is acting")
}

// ListQuery selects incidents, as people write it: every field may be
// empty. Before continues a list from the Next of the previous page.
type ListQuery struct {
	Status   string
	Severity string
	Limit    string
	Before   string
}

// List reads the page of incidents the query asks for, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) (store.Page, error) {
	f := store.Filter{Limit: defaultListLen, MaxScan: maxListScan}
	if q.Status != "" {
		f.Status = store.Status(q.Status)
		if !f.Status.Valid() {
			return store.Page{}, invalid("status", "%q is not one of open, acknowledged, resolved", q.Status)
		}
	}
	if q.Severity != "" {
		sev, err := policy.ParseSeverity(q.Severity)
		if err != nil {
			return store.Page{}, invalid("severity", "%v", err)
		}
		f.Severity = sev.String()
	}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > MaxListLen {
			return store.Page{}, invalid("limit", "%q is not a whole number from 1 to %d", q.Limit, MaxListLen)
		}
		f.Limit = n
	}
	if q.Before != "" {
		if !ValidID(q.Before) {
			return store.Page{}, invalid("before", "%q is not an incident id like INC-42", q.Before)
		}
		f.Before = q.Before
	}
	var page store.Page
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		page, err = tx.ListIncidents(f)
		return err
	})
	if err != nil {
		return store.Page{}, err
	}
	if page.Incidents == nil {
		page.Incidents = []store.Incident{}
	}
	return page, nil
}

// DeclareRequest declares an incident. Without a severity, policy
// classifies it from its labels.
type DeclareRequest struct {
	Title          string            `json:"title"`
	Severity       string            `json:"severity"`
	Description    string            `json:"description"`
	Labels         map[string]string `json:"labels"`
	CustomerImpact bool              `json:"customer_impact"`
	DeclaredBy     string            `json:"declared_by"`
}

// Idempotency is a client's key for a request that opens an incident, so
// that its retry after a lost answer finds the incident the first attempt
// opened instead of opening a second one. Key is already scoped by the
// front door (to the credential and the operation); Scope names the
// operation in the digest that tells a retry from another request reusing
// the key. The zero value is no key.
type Idempotency struct {
	Key   string
	Scope string
}

// IdempotencyWindow is how long a key is remembered: a retry comes within
// minutes; after a day the same key opens a new incident.
const IdempotencyWindow = 24 * time.Hour

// Declare validates a declaration and opens its incident. replayed is true
// when idem's key had already opened it.
func (s *Service) Declare(ctx context.Context, req DeclareRequest, actor string, idem Idempotency) (view *View, replayed bool, err error) {
	if err := CheckText("title", req.Title, MaxTitle, true); err != nil {
		return nil, false, err
	}
	if err := CheckText("description", req.Description, MaxText, false); err != nil {
		return nil, false, err
	}
	if err := checkLabels("labels", req.Labels); err != nil {
		return nil, false, err
	}
	cls := s.policy.Classify(req.Labels)
	if req.Severity != "" {
		sev, err := policy.ParseSeverity(req.Severity)
		if err != nil {
			return nil, false, invalid("severity", "%v", err)
		}
		cls.Severity = sev
	}
	by, err := who("declared_by", req.DeclaredBy, actor)
	if err != nil {
		return nil, false, err
	}
	return s.openIncident(ctx, store.Incident{
		Title:          strings.TrimSpace(req.Title),
		Description:    req.Description,
		Severity:       cls.Severity.String(),
		Source:         store.SourceManual,
		Labels:         req.Labels,
		Team:           cls.Team,
		RunbookURL:     cls.RunbookURL,
		CustomerImpact: req.CustomerImpact || s.policy.CustomerImpact(req.Labels),
		DeclaredBy:     by,
	}, by, idem)
}

// openIncident opens an incident that a person declared (or a drill) and
// returns it, or the incident idem's key opened before.
func (s *Service) openIncident(ctx context.Context, tmpl store.Incident, by string, idem Idempotency) (view *View, replayed bool, err error) {
	var digest string
	if idem.Key != "" {
		what, err := json.Marshal(tmpl)
		if err != nil {
			return nil, false, fmt.Errorf("digest of the request: %w", err)
		}
		sum := sha256.Sum256(append([]byte(idem.Scope+"\x00"), what...))
		digest = hex.EncodeToString(sum[:])
	}
	err = s.write(ctx, func(tx *txn) error {
		replayed = false
		now := s.now()
		if idem.Key != "" {
			id, err := replayOf(tx, idem.Key, digest, now)
			if err != nil {
				return err
			}
			if id != "" {
				replayed = true
				view, err = s.loadView(tx, id)
				return err
			}
		}
		inc := tmpl // fn may run more than once: start from the template each time
		ch, err := s.open(tx, now, &inc)
		if err != nil {
			return err
		}
		if err := ch.opened(store.KindDeclared, by); err != nil {
			return err
		}
		if err := ch.save(); err != nil {
			return err
		}
		if idem.Key != "" {
			if err := tx.PutRequest(idem.Key, store.Request{At: now, Digest: digest, IncidentID: ch.inc.ID}); err != nil {
				return err
			}
		}
		view, err = s.loadView(tx, ch.inc.ID)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return view, replayed, nil
}

// replayOf is the incident a request with this key already opened, or ""
// when the key is new (or older than IdempotencyWindow). A key reused for a
// different request is Unprocessable.
func replayOf(tx store.Tx, key, digest string, now time.Time) (string, error) {
	prev, err := tx.Request(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case now.Sub(prev.At) > IdempotencyWindow:
		return "", nil
	case prev.Digest != digest:
		return "", unprocessable("Idempotency-Key", "Idempotency-Key header: this key was used for a different request (which opened %s); send a new key for a new request", prev.IncidentID)
	}
	return prev.IncidentID, nil
}

// changeIncident runs fn on the incident id in one transaction and returns
// the incident as it is afterwards: the one path of every change people
// make to an incident.
func (s *Service) changeIncident(ctx context.Context, id string, fn func(ch *change) error) (*View, error) {
	var view *View
	err := s.write(ctx, func(tx *txn) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return unknownIncident(id, err)
		}
		ch := s.changeOf(tx, inc, s.now())
		if err := fn(ch); err != nil {
			return err
		}
		if err := ch.save(); err != nil {
			return err
		}
		view, err = s.loadView(tx, inc.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return view, nil
}

// timeFormat is how times appear in messages: RFC 3339 in UTC.
const timeFormat = "2006-01-02T15:04:05Z07:00"

// InChannel lists the open incidents whose Slack thread is in the channel
// (its ID), newest first: the incidents a command typed there is about.
func (s *Service) InChannel(ctx context.Context, channelID string) ([]store.Incident, error) {
	var out []store.Incident
	err := s.store.View(ctx, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		for _, inc := range open {
			if inc.SlackChannel == channelID && channelID != "" {
				out = append(out, inc)
			}
		}
		return nil
	})
	return out, err
}
