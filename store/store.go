// Package store is the contract of Responder's persistence: the model
// (incidents, their alerts and timelines, the outbox of notification
// intents, idempotency records), the DB and Tx interfaces every backend
// implements, and the sentinel errors. It imports no backend: store/bolt is
// the embedded default, and store/storetest is the conformance suite that
// every backend must pass.
package store

import (
	"context"
	"time"
)

// DB is a backend. Every Update is one transaction, durable before Update
// returns nil; View sees every committed Update.
type DB interface {
	// Update runs fn in a read-write transaction and returns once that
	// transaction is durable. fn may be called more than once (a backend
	// may retry it, alone or in another batch), so it must have no effect
	// outside the transaction other than setting its own results. When fn
	// returns an error nothing it wrote is kept and that error is returned.
	// An overloaded backend returns ErrBusy at once; a closed one ErrClosed.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// QueueDepth is the number of writes waiting to be committed.
	QueueDepth() int
	// Ready reports whether the backend accepts writes.
	Ready() error
	// Close stops accepting writes, commits what is queued and releases
	// the backend.
	Close() error
}

// Tx is what a transaction offers. Values returned are copies: they stay
// valid after the transaction ends.
type Tx interface {
	// NextIncidentID reserves the next sequential id, INC-<n>.
	NextIncidentID() (string, error)
	Incident(id string) (*Incident, error)
	// PutIncident writes the incident and keeps the dedup-key indexes true.
	PutIncident(inc *Incident) error
	// LatestByDedupKey is the newest incident of a source with that dedup
	// key, open or not.
	LatestByDedupKey(src Source, key string) (*Incident, error)
	// OpenIncidents are the incidents not yet resolved, newest first, read
	// through an index of open incidents (never a scan of every incident).
	OpenIncidents() ([]Incident, error)
	// ListIncidents lists newest first. It stops at f.Limit matches or after
	// f.MaxScan incidents read, and then sets Page.Next.
	ListIncidents(f Filter) (Page, error)
	Alert(incidentID, fingerprint string) (*Alert, error)
	PutAlert(incidentID string, a *Alert) error
	Alerts(incidentID string) ([]Alert, error)
	AppendTimeline(incidentID string, e Entry) error
	Timeline(incidentID string) ([]Entry, error)
	RecordUnmatched(u Unmatched) error
	Unmatched(limit int) ([]Unmatched, error)
	// Enqueue adds an intent to the outbox: it sets Seq, and Key and State
	// when empty.
	Enqueue(in *Intent) error
	Intent(seq uint64) (*Intent, error)
	// PutIntent writes an intent's new state; a finished intent leaves the
	// pending index.
	PutIntent(in *Intent) error
	// PendingIntents lists pending intents with a sequence above after, in
	// order, through the pending index (no scan of delivered ones). An
	// intent whose stored value cannot be decoded does not stop the list:
	// it counts towards limit, is left out, and the intents that could be
	// read come back with an *UndecodableError naming it (see SkipIntent).
	PendingIntents(after uint64, limit int) ([]Intent, error)
	// PendingSeqs lists the sequences of pending intents above after, in
	// order, at most limit of them (0: all), without reading the intents:
	// the dispatcher compares them with what it holds, as a set, because a
	// backend that commits concurrently may make a lower sequence visible
	// after a higher one.
	PendingSeqs(after uint64, limit int) ([]uint64, error)
	// SkipIntent takes an intent out of the pending index for good, leaving
	// its stored value as it is, for an intent that cannot be decoded.
	SkipIntent(seq uint64) error
	// IncidentIntents lists an incident's intents in order; one that cannot
	// be read is listed as failed with only its sequence.
	IncidentIntents(incidentID string) ([]Intent, error)
	// ResolvedOfKind records that incidentID of this kind resolved and
	// returns the first incident of the kind ever resolved (incidentID
	// itself when it is the first).
	ResolvedOfKind(kind, incidentID string) (first string, err error)
	// ResolvedBefore lists the incidents of kind recorded by ResolvedOfKind
	// with an id below before ("": any), newest first, at most limit of
	// them: the earlier drills of a scenario, to compare a drill with.
	ResolvedBefore(kind, before string, limit int) ([]string, error)
	// Request is the request recorded under an idempotency key, or
	// ErrNotFound.
	Request(key string) (*Request, error)
	// PutRequest records a request under its idempotency key.
	PutRequest(key string, r Request) error
	// Heartbeat is what is recorded of the heartbeat name, or ErrNotFound
	// before its first ping.
	Heartbeat(name string) (*Heartbeat, error)
	// PutHeartbeat records a heartbeat's state.
	PutHeartbeat(h *Heartbeat) error
	// Checklist is the incident's checklist, in order; empty when no
	// runbook is attached.
	Checklist(incidentID string) ([]Step, error)
	// PutChecklist writes the incident's checklist.
	PutChecklist(incidentID string, steps []Step) error
	// NextActionItemID reserves the next action item id, AI-<n>.
	NextActionItemID() (string, error)
	// ActionItem is the action item id, or ErrNotFound.
	ActionItem(id string) (*ActionItem, error)
	// PutActionItem writes an action item and keeps its indexes (by
	// incident, open) true.
	PutActionItem(a *ActionItem) error
	// ActionItems lists the action items that match f, oldest first, at
	// most f.Limit (0: all); an incident's and the open ones are read
	// through indexes.
	ActionItems(f ActionFilter) ([]ActionItem, error)
	// Postmortem is the stored post-mortem of an incident, or ErrNotFound.
	Postmortem(incidentID string) (*Postmortem, error)
	// PutPostmortem writes a post-mortem's state and latest version.
	PutPostmortem(p *Postmortem) error
	// AddPostmortemVersion keeps one more version of an incident's
	// post-mortem; a version number already kept is refused.
	AddPostmortemVersion(incidentID string, v PostmortemVersion) error
	// PostmortemVersions lists an incident's post-mortem versions, oldest
	// first.
	PostmortemVersions(incidentID string) ([]PostmortemVersion, error)
}

// Leases is what a backend shared by several replicas (store/postgres)
// offers for work that one replica must do at a time, such as delivering
// the outbox: a lease, held by one holder until it expires, with a fencing
// number that grows at every change of holder. A backend of one process
// (store/bolt) does not offer it: that process does the work.
type Leases interface {
	// HoldLease takes the lease name for holder when it is free or expired,
	// or extends it when holder holds it, for ttl. It returns the fencing
	// number while holder holds it, and 0 when another holder does.
	HoldLease(ctx context.Context, name, holder string, ttl time.Duration) (uint64, error)
}

// LeaseTx is the transaction of a backend that offers Leases: the holder
// checks, where it records the work, that its lease is still current.
type LeaseTx interface {
	// CheckLease returns ErrLeaseLost unless the lease name is unexpired and
	// has the fencing number token.
	CheckLease(name string, token uint64) error
}
