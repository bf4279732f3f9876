package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// gendbCmd writes a database of about --size bytes through the store
// package: a year of incidents, mostly resolved, each with its alerts, its
// timeline and its delivered notifications, as the daemon would have left
// them; the newest --open are still open. Nothing is left pending in the
// outbox, so the daemon starting on it has nothing to deliver.
func gendbCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gendb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", "", "database file to create (must not exist)")
	sizeFlag := fs.String("size", "1GiB", "size to reach: bytes, or with KiB, MiB, GiB")
	open := fs.Int("open", 100, "incidents left open (the newest)")
	seed := fs.Uint64("seed", 1, "random seed")
	perTx := fs.Int("per-tx", 200, "incidents written per transaction")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || *path == "" || *open < 0 || *perTx < 1 {
		_, _ = fmt.Fprintln(stderr, "responder-load gendb: want --path, a --size like 1GiB, --open >= 0, --per-tx >= 1")
		return 2
	}
	if _, err := os.Stat(*path); !errors.Is(err, os.ErrNotExist) {
		return fail(stderr, fmt.Errorf("%s exists (or cannot be checked): gendb writes a new file", *path))
	}
	start := time.Now()
	n, err := generate(ctx, *path, size, *open, *perTx, *seed)
	if err != nil {
		return fail(stderr, err)
	}
	st, err := os.Stat(*path)
	if err != nil {
		return fail(stderr, fmt.Errorf("stat %s: %w", *path, err))
	}
	_, _ = fmt.Fprintf(stdout, "gendb: %s: %d incidents (%d open), %.1f MiB in %.1f s\n",
		*path, n, min(*open, n), float64(st.Size())/(1<<20), time.Since(start).Seconds())
	return 0
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive whole number of bytes, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// generate writes incidents until the file reaches size, then leaves the
// newest open ones open. It returns the number of incidents written.
func generate(ctx context.Context, path string, size int64, open, perTx int, seed uint64) (int, error) {
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	// A seeded generator, so that the same flags give the same file.
	g := &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), at: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)} //nolint:gosec // test data, not secrets
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			_ = db.Close()
			return total, err
		}
		st, err := os.Stat(path)
		if err != nil {
			_ = db.Close()
			return total, fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Size() >= size {
			break
		}
		err = db.Update(ctx, func(tx store.Tx) error {
			for range perTx {
				if err := g.incident(tx, false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = db.Close()
			return total, fmt.Errorf("write incidents: %w", err)
		}
		total += perTx
	}
	err = db.Update(ctx, func(tx store.Tx) error {
		for range open {
			if err := g.incident(tx, true); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return total, fmt.Errorf("write open incidents: %w", err)
	}
	return total + open, nil
}

// generator makes realistic incidents, each a little later than the last.
type generator struct {
	rnd *rand.Rand
	at  time.Time
}

func (g *generator) incident(tx store.Tx, open bool) error {
	names := []string{"HighErrorRate", "HighLatency", "DiskFillingUp", "PodCrashLooping", "QueueBacklog",
		"CertificateExpiring", "ReplicationLag", "NodeNotReady", "TargetDown", "MemoryPressure"}
	people := []string{"maria", "dev", "li.wei", "sam", "olu", "ines"}
	sevs := []string{"S1", "S2", "S3", "S3", "S3", "S4", "S4"}
	id, err := tx.NextIncidentID()
	if err != nil {
		return err
	}
	g.at = g.at.Add(time.Duration(2+g.rnd.IntN(10)) * time.Minute)
	created := g.at
	name := names[g.rnd.IntN(len(names))]
	service := fmt.Sprintf("svc-%03d", g.rnd.IntN(300))
	team := fmt.Sprintf("team-%02d", 1+g.rnd.IntN(20))
	sev := sevs[g.rnd.IntN(len(sevs))]
	src := store.SourceAlertmanager
	switch g.rnd.IntN(10) {
	case 0:
		src = store.SourceOpsGenie
	case 1:
		src = store.SourceManual
	}
	groupLabels := model.LabelSet{"alertname": model.LabelValue(name), "service": model.LabelValue(service)}
	inc := &store.Incident{
		ID: id, Title: service + ": " + name, Severity: sev, Status: store.StatusResolved, Source: src,
		DedupKey:    `{}/{env="production"}:` + groupLabels.String(),
		Description: name + " on " + service + ": see the runbook; the alerts below name the instances.",
		Labels:      map[string]string{"alertname": name, "service": service, "env": "production", "team": team},
		Team:        team, RunbookURL: "https://runbooks.example.com/" + service + "/" + name,
		SourceURL: "https://alertmanager.example.com/#/alerts?receiver=responder",
		CreatedAt: created, Kind: string(src) + ":" + name,
		SlackTarget: "#" + team + "-incidents", SlackChannel: "C0" + strconv.Itoa(100000+g.rnd.IntN(20)),
		SlackTS: fmt.Sprintf("%d.%06d", created.Unix(), g.rnd.IntN(1_000_000)),
	}
	if src == store.SourceManual {
		inc.DedupKey, inc.DeclaredBy = id, people[g.rnd.IntN(len(people))]
	}
	steps := []time.Duration{2 * time.Minute, 4 * time.Minute, 9 * time.Minute, 35 * time.Minute, 50 * time.Minute}
	ack, roles, update, resolved := created.Add(steps[0]), created.Add(steps[1]), created.Add(steps[2]), created.Add(steps[3]+time.Duration(g.rnd.IntN(120))*time.Minute)
	lead, comms := people[g.rnd.IntN(3)], people[3+g.rnd.IntN(3)]
	inc.AcknowledgedAt, inc.AcknowledgedBy = &ack, lead
	inc.Roles, inc.RolesAssignedAt = store.Roles{RecoveryLead: lead, CommsLead: comms}, &roles
	inc.FirstUpdateAt, inc.LastUpdateAt = &update, &update
	inc.Status = store.StatusAcknowledged
	if !open {
		inc.Status, inc.ResolvedAt, inc.ResolvedBy = store.StatusResolved, &resolved, lead
		inc.Summary = "rolled back the release that caused it; see the timeline"
	}
	inc.UpdatedAt = created
	if inc.ResolvedAt != nil {
		inc.UpdatedAt = *inc.ResolvedAt
	}

	entry := func(at time.Time, kind, text, by string) error {
		return tx.AppendTimeline(id, store.Entry{At: at, Kind: kind, Text: text, By: by})
	}
	if err := entry(created, store.KindOpened, "opened from Alertmanager group "+inc.DedupKey, string(src)); err != nil {
		return err
	}
	alerts := 1 + g.rnd.IntN(24)
	for a := range alerts {
		inst := instance(int64(a))
		lbls := model.LabelSet{"alertname": model.LabelValue(name), "env": "production", "instance": model.LabelValue(inst),
			"job": model.LabelValue(service), "service": model.LabelValue(service), "severity": "critical", "team": model.LabelValue(team)}
		al := &store.Alert{
			Fingerprint: lbls.Fingerprint().String(), Status: store.AlertFiring, StartsAt: created,
			Labels: map[string]string{}, Severity: sev, UpdatedAt: created,
			Annotations: map[string]string{
				"summary":     inc.Title,
				"description": name + " on " + inst + " of " + service + " has been above its threshold for the last 5 minutes.",
				"runbook_url": inc.RunbookURL,
			},
			GeneratorURL: "http://prometheus-0.prometheus.monitoring.svc:9090/graph?g0.expr=sum+by+%28instance%29+%28rate%28http_requests_total%7Bjob%3D%22" + service + "%22%7D%5B5m%5D%29%29&g0.tab=1",
		}
		for k, v := range lbls {
			al.Labels[string(k)] = string(v)
		}
		if !open {
			end := resolved.Add(-time.Minute)
			al.Status, al.EndsAt, al.UpdatedAt = store.AlertResolved, &end, end
		}
		if err := tx.PutAlert(id, al); err != nil {
			return err
		}
		if err := entry(created, store.KindAlertFiring, name+" on "+inst+" ["+al.Fingerprint+"] firing", "alertmanager"); err != nil {
			return err
		}
		if !open {
			if err := entry(*al.EndsAt, store.KindAlertResolved, name+" on "+inst+" ["+al.Fingerprint+"] resolved", "alertmanager"); err != nil {
				return err
			}
		}
	}
	inc.AlertsTotal = alerts
	if open {
		inc.AlertsFiring = alerts
	}
	for _, e := range []store.Entry{
		{At: ack, Kind: store.KindAcknowledged, Text: "acknowledged", By: lead},
		{At: roles, Kind: store.KindRoles, Text: "recovery lead " + lead + ", communications lead " + comms, By: lead},
		{At: update, Kind: store.KindUpdate, Text: "error rate back under 1% after the rollback; watching", By: comms},
	} {
		if err := entry(e.At, e.Kind, e.Text, e.By); err != nil {
			return err
		}
	}
	events := []string{integrations.EventOpened, integrations.EventAlertJoined, integrations.EventAcknowledged, integrations.EventNote}
	if !open {
		if err := entry(resolved, store.KindResolved, inc.Summary, lead); err != nil {
			return err
		}
		events = append(events, integrations.EventResolved, integrations.EventRootUpdate)
	}
	for i, ev := range events {
		at := created.Add(time.Duration(i) * time.Second)
		in := &store.Intent{IncidentID: id, Channel: "slack", Target: inc.SlackTarget, Event: ev, Text: ev + ": " + inc.Title,
			CreatedAt: at, NextAt: at}
		if err := tx.Enqueue(in); err != nil {
			return err
		}
		sent := at.Add(300 * time.Millisecond)
		in.State, in.Attempts, in.SentAt = store.IntentSent, 1, &sent
		if err := tx.PutIntent(in); err != nil {
			return err
		}
	}
	if !open {
		first, err := tx.ResolvedOfKind(inc.Kind, id)
		if err != nil {
			return err
		}
		inc.PostmortemRequired = first == id
	}
	return tx.PutIncident(inc)
}
