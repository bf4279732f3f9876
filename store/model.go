package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors of the store; check them with errors.Is.
var (
	// ErrNotFound: no incident (or alert) with that key.
	ErrNotFound = errors.New("not found")
	// ErrBusy: the write queue is full; the caller should retry later.
	ErrBusy = errors.New("write queue full")
	// ErrClosed: the store is shutting down.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the database cannot be reached (a PostgreSQL restart,
	// a network partition); nothing was written, the caller should retry
	// later.
	ErrUnavailable = errors.New("database unreachable")
	// ErrLeaseLost: a lease's holder checked it and it has expired or
	// passed to another holder (see Leases).
	ErrLeaseLost = errors.New("lease lost")
)

// Status of an incident.
type Status string

// The three incident statuses.
const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusOpen || s == StatusAcknowledged || s == StatusResolved
}

// Source tells where an incident came from.
type Source string

// Incident sources.
const (
	SourceAlertmanager Source = "alertmanager"
	SourceOpsGenie     Source = "opsgenie"
	SourceJSM          Source = "jsm"       // Jira Service Management Operations' outgoing webhook
	SourcePagerDuty    Source = "pagerduty" // PagerDuty's v3 webhooks
	SourceManual       Source = "manual"
	SourceHeartbeat    Source = "heartbeat" // the dead-man's switch: a heartbeat went silent
	SourceDrill        Source = "drill"
)

// Roles of the incident process. The two must be different people.
type Roles struct {
	RecoveryLead string `json:"recovery_lead"`
	CommsLead    string `json:"comms_lead"`
}

// Incident is the stored incident document. Its alerts and timeline are kept
// beside it (see Tx.Alerts and Tx.Timeline) so that the document stays small.
type Incident struct {
	ID                 string            `json:"id"`
	Title              string            `json:"title"`
	Description        string            `json:"description,omitempty"`
	Severity           string            `json:"severity"`
	Status             Status            `json:"status"`
	Source             Source            `json:"source"`
	DedupKey           string            `json:"dedup_key"`
	Labels             map[string]string `json:"labels"`
	Team               string            `json:"team,omitempty"`
	RunbookURL         string            `json:"runbook_url,omitempty"`
	SourceURL          string            `json:"source_url,omitempty"` // where the first alert came from
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
	DeclaredBy         string            `json:"declared_by,omitempty"`
	AcknowledgedAt     *time.Time        `json:"acknowledged_at"`
	AcknowledgedBy     string            `json:"acknowledged_by,omitempty"`
	ResolvedAt         *time.Time        `json:"resolved_at"`
	ResolvedBy         string            `json:"resolved_by,omitempty"`
	Summary            string            `json:"summary,omitempty"`
	OutOfHours         bool              `json:"out_of_hours"`
	Roles              Roles             `json:"roles"`
	ETA                *time.Time        `json:"eta"`
	CustomerImpact     bool              `json:"customer_impact"`
	PostmortemRequired bool              `json:"postmortem_required"`
	Drill              bool              `json:"drill"`
	ZoomURL            string            `json:"zoom_url"`
	// SlackTarget is the channel the incident's announcement goes to, set
	// when it is queued; SlackChannel and SlackTS identify the posted root
	// message (its thread holds everything after it).
	SlackTarget  string     `json:"slack_target,omitempty"`
	SlackChannel string     `json:"slack_channel,omitempty"`
	SlackTS      string     `json:"slack_ts,omitempty"`
	PagedAt      *time.Time `json:"paged_at"` // the policy's page was queued; never twice
	// PagerAlert: Responder created an alert for the incident in the
	// pager (the policy's page, or one a person asked for), so that a later
	// page adds a responder to it and resolving closes it.
	PagerAlert bool `json:"pager_alert,omitempty"`
	// PagedVia is the pager holding that alert (opsgenie, jsm,
	// pagerduty), so that its acknowledgement and close go there even
	// after the routes change.
	PagedVia     string `json:"paged_via,omitempty"`
	BridgeQueued bool   `json:"bridge_queued,omitempty"` // a Zoom meeting was requested
	AlertsFiring int    `json:"alerts_firing"`
	AlertsTotal  int    `json:"alerts_total"`
	// AlertsTruncated is how many alerts the sender last left out
	// (Alertmanager's truncatedAlerts, set by max_alerts).
	AlertsTruncated uint64 `json:"alerts_truncated"`
	// Kind groups incidents of the same kind for post-mortems (policy:
	// default the alertname, the OpsGenie alias, the manual title).
	Kind string `json:"kind,omitempty"`
	// Scenario is the drill scenario a drill incident was started from;
	// Scheduled names the drills.schedule entry that started it, if any.
	Scenario        string     `json:"scenario,omitempty"`
	Scheduled       string     `json:"scheduled,omitempty"`
	RolesAssignedAt *time.Time `json:"roles_assigned_at"`
	FirstUpdateAt   *time.Time `json:"first_update_at"` // the first progress update
	LastUpdateAt    *time.Time `json:"last_update_at"`  // the last progress update
	// LastReminderAt and ETARequestedAt record the reminders already
	// posted, so that a restart neither loses nor repeats one.
	LastReminderAt       *time.Time `json:"last_reminder_at"`
	ETARequestedAt       *time.Time `json:"eta_requested_at"`
	PostmortemRemindedAt *time.Time `json:"postmortem_reminded_at"`
}

// Step states.
const (
	StepOpen    = "open"
	StepDone    = "done"
	StepSkipped = "skipped"
)

// Step is one step of a runbook attached to an incident. An incident's
// steps (its checklist, see Tx.Checklist) are copied when each runbook is
// attached, so that a later change of the configuration does not rewrite
// what people were asked to do; they are kept beside the incident
// document, which an alert joining rewrites, and they need not be.
type Step struct {
	ID      string `json:"id"` // RUNBOOK/N, N counting from 1
	Runbook string `json:"runbook"`
	Text    string `json:"text"`
	Role    string `json:"role,omitempty"` // recovery, comms
	Link    string `json:"link,omitempty"`
	State   string `json:"state"`
	// By and At say who marked it done or skipped, and when; Reason is
	// why it was skipped.
	By     string     `json:"by,omitempty"`
	At     *time.Time `json:"at,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// Alert is one alert of an incident, keyed by its fingerprint (for OpsGenie,
// the alert id).
type Alert struct {
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"` // firing or resolved
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       *time.Time        `json:"ends_at"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generator_url,omitempty"`
	Severity     string            `json:"severity"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// Alert statuses, as Alertmanager spells them.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Entry is one line of an incident's append-only timeline.
type Entry struct {
	At   time.Time  `json:"at"`
	Kind string     `json:"kind"`
	Text string     `json:"text"`
	By   string     `json:"by,omitempty"`
	ETA  *time.Time `json:"eta,omitempty"` // a progress update's ETA for recovery
}

// Timeline entry kinds.
const (
	KindOpened          = "opened"
	KindDeclared        = "declared"
	KindAlertFiring     = "alert_firing"
	KindAlertResolved   = "alert_resolved"
	KindSeverityRaised  = "severity_raised"
	KindSeverityLowered = "severity_lowered"
	KindAcknowledged    = "acknowledged"
	KindResolved        = "resolved"
	KindReopened        = "reopened"
	KindNote            = "note"
	KindAction          = "action"
	KindNotification    = "notification"
	KindRoles           = "roles"
	KindUpdate          = "update"
	KindReminder        = "reminder"
	KindCustomerImpact  = "customer_impact"
	KindPostmortem      = "postmortem"
	KindChecklist       = "checklist"
	KindActionItem      = "action_item"
)

// Intent states.
const (
	IntentPending = "pending"
	IntentSent    = "sent"
	IntentFailed  = "failed"
	// IntentCancelled: not sent, on purpose: a page whose incident was
	// resolved before the page went.
	IntentCancelled = "cancelled"
)

// Intent is one notification an incident change causes, written to the
// outbox in the same transaction as the change and delivered later by the
// dispatcher. It refers to its incident; the message is rendered from the
// incident as it is when the intent is delivered.
type Intent struct {
	Seq        uint64 `json:"seq"`
	IncidentID string `json:"incident_id"`
	Channel    string `json:"channel"` // log, slack, email, zoom, opsgenie
	Target     string `json:"target"`  // Slack channel, addresses, responder
	Event      string `json:"event"`   // opened, alert_joined, resolved, page, ...
	Text       string `json:"text"`
	By         string `json:"by,omitempty"`
	Key        string `json:"key"` // the same on every attempt
	// After is an intent that must be finished (sent or failed) first: the
	// Slack announcement waits for the Zoom bridge it links to.
	After      uint64     `json:"after,omitempty"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	NextAt     time.Time  `json:"next_attempt_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	MergedInto uint64     `json:"merged_into,omitempty"` // delivered as part of another intent's message
	// HoldsTarget: NextAt is the vendor's Retry-After, which holds every
	// delivery to the same channel and target, after a restart too.
	HoldsTarget bool `json:"holds_target,omitempty"`
	// Mention is who a Slack message calls on: a person's name or Slack
	// user ID, or "channel"; empty for nobody.
	Mention string `json:"mention,omitempty"`
	// AttemptAt is set, durably, before an attempt whose repetition the
	// vendor could not fold (a Slack message) is made, and cleared when its
	// outcome is written: an intent found with it set after a restart (or
	// after an attempt that ended without an answer) is in doubt, and the
	// vendor is asked whether the message exists before it is sent again.
	AttemptAt *time.Time `json:"attempt_at,omitempty"`
	// AttemptKey is the Key of the message the attempt sent: the head's,
	// when this intent was collapsed into another's message.
	AttemptKey string `json:"attempt_key,omitempty"`
}

// UndecodableError names outbox entries whose stored value could not be
// read back; the intents around them are returned all the same.
type UndecodableError struct {
	Seqs []uint64
	Errs []error // one per sequence
}

func (e *UndecodableError) Error() string {
	return fmt.Sprintf("%d outbox intents cannot be decoded (first: %d: %v)", len(e.Seqs), e.Seqs[0], e.Errs[0])
}

// Unmatched records webhook input that belongs to no incident, such as a
// resolved notification for a group never seen firing.
type Unmatched struct {
	At       time.Time `json:"at"`
	Source   Source    `json:"source"`
	DedupKey string    `json:"dedup_key"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail,omitempty"`
}

// Heartbeat is what is known of one heartbeat of the dead-man's switch:
// when it last pinged, so that a restart neither forgets a ping nor raises
// a false alarm.
type Heartbeat struct {
	Name     string    `json:"name"`
	LastPing time.Time `json:"last_ping"`
	Pings    uint64    `json:"pings"`
}

// Request is a request that created an incident, kept under the
// Idempotency-Key its client sent, so that the client's retry after a lost
// answer finds the incident instead of creating a second one.
type Request struct {
	At         time.Time `json:"at"`
	Digest     string    `json:"digest"` // of the method, path and body: a key reused for another request is refused
	IncidentID string    `json:"incident_id"`
}

// Filter selects incidents for ListIncidents. Zero fields select
// everything; Limit and MaxScan are set by the caller.
type Filter struct {
	Status   Status
	Severity string
	// Before lists only incidents older than this id (exclusive), for the
	// next page.
	Before string
	// Limit is the most incidents returned.
	Limit int
	// MaxScan bounds how many incidents one call reads, so that a filter
	// matching little never walks a large file in one read transaction.
	MaxScan int
}

// Page is one page of ListIncidents. Next, when set, is the Before of the
// following page.
type Page struct {
	Incidents []Incident
	Next      string
}

// IncidentNumber parses "INC-42" into 42; anything else (no prefix, zero,
// a leading zero, not a number) is ErrNotFound, as no incident has that id.
func IncidentNumber(id string) (uint64, error) {
	num, ok := strings.CutPrefix(id, "INC-")
	if !ok {
		return 0, fmt.Errorf("incident %q: %w", id, ErrNotFound)
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != num {
		return 0, fmt.Errorf("incident %q: %w", id, ErrNotFound)
	}
	return n, nil
}

// Matches reports whether an incident of this status and severity passes
// f's status and severity.
func (f Filter) Matches(status Status, severity string) bool {
	return (f.Status == "" || status == f.Status) && (f.Severity == "" || severity == f.Severity)
}

// PageOfOpen is ListIncidents for a filter of open or acknowledged
// incidents, made from every open incident, newest first (a backend's
// open index): the matches older than f.Before, at most f.Limit of them,
// and Next set to the last one returned when more may follow.
func PageOfOpen(open []Incident, f Filter) (Page, error) {
	var before uint64
	if f.Before != "" {
		n, err := IncidentNumber(f.Before)
		if err != nil {
			return Page{}, fmt.Errorf("before: %w", err)
		}
		before = n
	}
	var page Page
	for i := range open {
		n, _ := IncidentNumber(open[i].ID)
		if before != 0 && n >= before || !f.Matches(open[i].Status, open[i].Severity) {
			continue
		}
		if f.Limit > 0 && len(page.Incidents) >= f.Limit {
			page.Next = page.Incidents[len(page.Incidents)-1].ID
			break
		}
		page.Incidents = append(page.Incidents, open[i])
	}
	return page, nil
}

// Action item states.
const (
	ActionOpen   = "open"
	ActionDone   = "done"
	ActionWontDo = "wont_do"
)

// ActionItem is a follow-up action of an incident ("add protection against
// cluster deletion"), owned by a person until it is done or dropped.
type ActionItem struct {
	ID         string     `json:"id"` // AI-<n>
	IncidentID string     `json:"incident_id"`
	Title      string     `json:"title"`
	Owner      string     `json:"owner"`
	Due        string     `json:"due,omitempty"`  // a date, 2026-12-24, in the display zone
	Link       string     `json:"link,omitempty"` // the tracker's issue
	State      string     `json:"state"`
	Reason     string     `json:"reason,omitempty"` // why it will not be done
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ClosedAt   *time.Time `json:"closed_at"`
	ClosedBy   string     `json:"closed_by,omitempty"`
	RemindedAt *time.Time `json:"reminded_at"` // the last overdue reminder
}

// ActionFilter selects action items; zero fields select everything.
type ActionFilter struct {
	Incident string
	State    string
	Owner    string
	Limit    int
}

// Matches reports whether a passes f's state and owner (the incident is
// a backend's index).
func (f ActionFilter) Matches(a *ActionItem) bool {
	return (f.State == "" || a.State == f.State) && (f.Owner == "" || a.Owner == f.Owner) &&
		(f.Incident == "" || a.IncidentID == f.Incident)
}

// ActionNumber parses "AI-7" into 7; anything else is ErrNotFound.
func ActionNumber(id string) (uint64, error) {
	num, ok := strings.CutPrefix(id, "AI-")
	if !ok {
		return 0, fmt.Errorf("action item %q: %w", id, ErrNotFound)
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != num {
		return 0, fmt.Errorf("action item %q: %w", id, ErrNotFound)
	}
	return n, nil
}

// Post-mortem review states.
const (
	PostmortemOwed     = "owed"     // required, nothing written yet
	PostmortemDrafted  = "drafted"  // a version exists
	PostmortemReviewed = "reviewed" // the review meeting went through it
)

// Postmortem is an incident's stored post-mortem: its review state and
// its latest version. Every version is kept (see Tx.PostmortemVersions).
type Postmortem struct {
	IncidentID string     `json:"incident_id"`
	State      string     `json:"state"`
	Version    int        `json:"version"` // the latest, from 1; 0 before any
	Markdown   string     `json:"markdown"`
	EditedBy   string     `json:"edited_by,omitempty"`
	EditedAt   *time.Time `json:"edited_at"`
	ReviewedBy string     `json:"reviewed_by,omitempty"`
	ReviewedAt *time.Time `json:"reviewed_at"`
}

// PostmortemVersion is one saved text of a post-mortem.
type PostmortemVersion struct {
	Version  int       `json:"version"`
	Markdown string    `json:"markdown"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"` // what changed
}
