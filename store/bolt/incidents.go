package bolt

import (
	"bytes"
	"maps"
	"time"

	"github.com/responder-sre/responder/store"
)

// maxCachedIncidents bounds the decoded incidents the writer keeps: a few
// MiB at most, so that the memory target holds with many open incidents.
const maxCachedIncidents = 1024

// incidentCache keeps the incidents the writer last read or wrote, decoded,
// each with the bytes it was decoded from (or encoded to). An alert that
// joins an open incident reads the incident, changes it and writes it back:
// the next read in a write transaction that finds those very bytes in the
// file takes a copy of the decoded incident instead of decoding the JSON
// again, which was a tenth of the writer's work on the ingest path.
//
// Comparing the bytes makes it right by construction: a transaction rolled
// back, a write by another path, or a restart leaves other bytes in the file,
// and the incident is decoded from them. It belongs to the writer goroutine
// alone (read transactions do not use it), so it needs no lock.
type incidentCache struct {
	entries map[uint64]cachedIncident
}

type cachedIncident struct {
	raw []byte // the document as stored; never changed once kept
	inc store.Incident
}

func newIncidentCache() *incidentCache {
	return &incidentCache{entries: make(map[uint64]cachedIncident)}
}

// get returns a copy of incident n when raw is what it was kept with.
func (c *incidentCache) get(n uint64, raw []byte) (*store.Incident, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.entries[n]
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return cloneIncident(&e.inc), true
}

// put keeps a copy of inc as encoded in raw; raw must not change afterwards.
func (c *incidentCache) put(n uint64, raw []byte, inc *store.Incident) {
	if c == nil {
		return
	}
	if _, ok := c.entries[n]; !ok && len(c.entries) >= maxCachedIncidents {
		for k := range c.entries { // drop any one: the cache only saves work
			delete(c.entries, k)
			break
		}
	}
	c.entries[n] = cachedIncident{raw: raw, inc: *cloneIncident(inc)}
}

// cloneIncident copies inc deeply: the copy shares no map or pointer with
// it, so that a caller may change either. TestCloneIncidentSharesNothing
// fails when a field of a reference type is added and not copied here.
func cloneIncident(inc *store.Incident) *store.Incident {
	c := *inc
	c.Labels = maps.Clone(inc.Labels)
	for _, p := range []**time.Time{&c.AcknowledgedAt, &c.ResolvedAt, &c.ETA, &c.PagedAt, &c.RolesAssignedAt,
		&c.FirstUpdateAt, &c.LastUpdateAt, &c.LastReminderAt, &c.ETARequestedAt, &c.PostmortemRemindedAt} {
		if *p != nil {
			t := **p
			*p = &t
		}
	}
	return &c
}
