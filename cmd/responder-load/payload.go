package main

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// payloads generates Alertmanager webhook bodies (version 4, the shape of
// handlers/testdata/am_firing_v034.json: Alertmanager 0.34 with
// notification_reason and routeLabels) for request numbers 0, 1, 2, ...
//
// Request r belongs to group r mod groups; each group is one Alertmanager
// group (one groupKey, so one incident) with its own alertname, service and
// team. The k-th body of a group carries that group's alerts
// k*alertsPerBody ... k*alertsPerBody+alertsPerBody-1, each a distinct
// label set (its instance) with Alertmanager's fingerprint of it. With
// fingerprints set, a group cycles through fingerprints/groups distinct
// alerts, so later bodies re-send alerts already sent (as Alertmanager
// does on every group_interval); with zero, every alert is new.
type payloads struct {
	alertsPerBody int
	groups        int
	fingerprints  int
	severity      string
	startsAt      string // RFC 3339, the same for every alert (a re-sent alert is the same alert)
	run           string // keeps the groups of different runs apart
	group         []groupParts
}

// groupParts are the parts of a body that are the same for every alert of
// a group, already written as JSON.
type groupParts struct {
	key        string // groupKey
	alertname  string
	service    string
	team       string
	summary    string
	generator  string
	groupJSON  []byte // from "groupLabels" to the end of the body
	annotation string // runbook_url
}

func newPayloads(alertsPerBody, groups, fingerprints int, severity, run string, startsAt time.Time) (*payloads, error) {
	switch {
	case alertsPerBody < 1:
		return nil, fmt.Errorf("alerts per body: %d, want at least 1", alertsPerBody)
	case groups < 1:
		return nil, fmt.Errorf("groups: %d, want at least 1", groups)
	case fingerprints < 0:
		return nil, fmt.Errorf("fingerprints: %d, want 0 (every alert new) or more", fingerprints)
	case fingerprints > 0 && fingerprints < groups:
		return nil, fmt.Errorf("fingerprints: %d, want at least one per group (%d)", fingerprints, groups)
	case severity == "" || !isPlain(severity) || !isPlain(run):
		return nil, fmt.Errorf("severity %q and run %q: want plain non-empty text", severity, run)
	}
	alertNames := []string{"HighErrorRate", "HighLatency", "DiskFillingUp", "PodCrashLooping", "QueueBacklog",
		"CertificateExpiring", "ReplicationLag", "NodeNotReady", "TargetDown", "MemoryPressure"}
	p := &payloads{alertsPerBody: alertsPerBody, groups: groups, fingerprints: fingerprints, severity: severity,
		startsAt: startsAt.UTC().Format(time.RFC3339Nano), run: run}
	for g := range groups {
		gp := groupParts{
			alertname: alertNames[g%len(alertNames)],
			service:   fmt.Sprintf("svc-%s%02d", run, g+1),
			team:      teamOf(g),
		}
		gp.summary = gp.service + ": " + gp.alertname
		gp.annotation = "https://runbooks.example.com/" + gp.service + "/" + gp.alertname
		gp.generator = "http://prometheus-0.prometheus.monitoring.svc:9090/graph?g0.expr=sum+by+%28instance%29+%28rate%28http_requests_total%7Bcode%3D~%225..%22%2Cjob%3D%22" +
			gp.service + "%22%7D%5B5m%5D%29%29+%3E+0.05&g0.tab=1"
		groupLabels := model.LabelSet{"alertname": model.LabelValue(gp.alertname), "service": model.LabelValue(gp.service)}
		gp.key = `{}/{env="production"}:` + groupLabels.String()

		b := []byte(`],"notification_reason":"first notification","groupLabels":{"alertname":`)
		b = appendString(b, gp.alertname)
		b = append(b, `,"service":`...)
		b = appendString(b, gp.service)
		b = append(b, `},"commonLabels":{"alertname":`...)
		b = appendString(b, gp.alertname)
		b = append(b, `,"env":"production","job":`...)
		b = appendString(b, gp.service)
		b = append(b, `,"service":`...)
		b = appendString(b, gp.service)
		b = append(b, `,"severity":`...)
		b = appendString(b, severity)
		b = append(b, `,"team":`...)
		b = appendString(b, gp.team)
		b = append(b, `},"commonAnnotations":{"runbook_url":`...)
		b = appendString(b, gp.annotation)
		b = append(b, `,"summary":`...)
		b = appendString(b, gp.summary)
		b = append(b, `},"routeLabels":{"team":`...)
		b = appendString(b, gp.team)
		b = append(b, `},"externalURL":"https://alertmanager.example.com","version":"4","groupKey":`...)
		b = appendString(b, gp.key)
		b = append(b, `,"truncatedAlerts":0}`...)
		gp.groupJSON = b
		p.group = append(p.group, gp)
	}
	return p, nil
}

// teamOf is the team label of group g: the bench's Slack configuration
// routes team-01 ... to one channel each.
func teamOf(g int) string { return fmt.Sprintf("team-%02d", g+1) }

// groupOf is the group that request r belongs to.
func (p *payloads) groupOf(r int64) int { return int(r % int64(p.groups)) }

// alertIndex is the index, within its group, of the j-th alert of request r.
func (p *payloads) alertIndex(r int64, j int) int64 {
	a := (r/int64(p.groups))*int64(p.alertsPerBody) + int64(j)
	if p.fingerprints > 0 {
		a %= int64(p.fingerprints / p.groups)
	}
	return a
}

// instance names alert a of a group: a distinct label value per alert.
func instance(a int64) string {
	return fmt.Sprintf("10.%d.%d.%d:8080", (a>>16)&0xff, (a>>8)&0xff, a&0xff) + suffix(a>>24)
}

func suffix(hi int64) string {
	if hi == 0 {
		return ""
	}
	return "/" + strconv.FormatInt(hi, 10)
}

// alertLabels are the labels of alert a of group g.
func (p *payloads) alertLabels(g int, a int64) model.LabelSet {
	gp := &p.group[g]
	return model.LabelSet{
		"alertname": model.LabelValue(gp.alertname),
		"env":       "production",
		"instance":  model.LabelValue(instance(a)),
		"job":       model.LabelValue(gp.service),
		"service":   model.LabelValue(gp.service),
		"severity":  model.LabelValue(p.severity),
		"team":      model.LabelValue(gp.team),
	}
}

// Body appends request r's body to buf and returns it with its group.
func (p *payloads) Body(buf []byte, r int64) ([]byte, int) {
	g := p.groupOf(r)
	gp := &p.group[g]
	b := append(buf, `{"receiver":"responder","status":"firing","alerts":[`...)
	for j := range p.alertsPerBody {
		a := p.alertIndex(r, j)
		inst := instance(a)
		if j > 0 {
			b = append(b, ',')
		}
		// Keys in the order Alertmanager's encoder writes them; label and
		// annotation keys sorted, as Go writes a map.
		b = append(b, `{"status":"firing",`...)
		b = p.appendAlert(b, gp, inst)
		b = append(b, `,"endsAt":"0001-01-01T00:00:00Z","generatorURL":`...)
		b = appendString(b, gp.generator)
		b = append(b, `,"fingerprint":`...)
		b = appendString(b, p.alertLabels(g, a).Fingerprint().String())
		b = append(b, '}')
	}
	return append(b, gp.groupJSON...), g
}

// appendAlert appends the fields an alert has in both shapes: its labels,
// annotations and start, keys sorted as Go writes a map.
func (p *payloads) appendAlert(b []byte, gp *groupParts, inst string) []byte {
	b = append(b, `"labels":{"alertname":`...)
	b = appendString(b, gp.alertname)
	b = append(b, `,"env":"production","instance":`...)
	b = appendString(b, inst)
	b = append(b, `,"job":`...)
	b = appendString(b, gp.service)
	b = append(b, `,"service":`...)
	b = appendString(b, gp.service)
	b = append(b, `,"severity":`...)
	b = appendString(b, p.severity)
	b = append(b, `,"team":`...)
	b = appendString(b, gp.team)
	b = append(b, `},"annotations":{"description":`...)
	b = appendString(b, gp.alertname+" on "+inst+" of "+gp.service+" has been above its threshold for the last 5 minutes.")
	b = append(b, `,"runbook_url":`...)
	b = appendString(b, gp.annotation)
	b = append(b, `,"summary":`...)
	b = appendString(b, gp.summary)
	b = append(b, `},"startsAt":`...)
	return appendString(b, p.startsAt)
}

// PostableBody appends request r's alerts to buf as Alertmanager's own API
// takes them (POST /api/v2/alerts, as Prometheus sends them): the same
// alerts as Body's, each with its labels, annotations, start and
// generator URL, without the group around them. It returns the group too.
func (p *payloads) PostableBody(buf []byte, r int64) ([]byte, int) {
	g := p.groupOf(r)
	gp := &p.group[g]
	b := append(buf, '[')
	for j := range p.alertsPerBody {
		a := p.alertIndex(r, j)
		inst := instance(a)
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = p.appendAlert(b, gp, inst)
		b = append(b, `,"generatorURL":`...)
		b = appendString(b, gp.generator)
		b = append(b, '}')
	}
	return append(b, ']'), g
}

// appendString appends s as a JSON string, escaped as Go's encoder does
// (so "&", "<" and ">" too, as in Alertmanager's bodies).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// isPlain reports whether s is printable ASCII without quotes, so that it
// can go into a label value and a group key as it is.
func isPlain(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= utf8.RuneSelf || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}
