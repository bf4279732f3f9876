package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

func waitReadyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wait-ready", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:9095", "base URL")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this")
	path := fs.String("path", "/readyz", "readiness path (Alertmanager's is /-/ready)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	start := time.Now()
	ready, err := pollReady(ctx, *base, *path, *timeout, nil)
	if err != nil {
		return fail(stderr, err)
	}
	if !ready {
		return fail(stderr, fmt.Errorf("%s not ready after %s", *base, *timeout))
	}
	_, _ = fmt.Fprintf(stdout, "%s ready after %.0f ms\n", *base, float64(time.Since(start))/1e6)
	return 0
}

// waitDrainCmd waits until the daemon's outbox_pending gauge is 0.
func waitDrainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wait-drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:9095", "base URL of the daemon")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	var last float64 = -1
	for time.Since(start) < *timeout {
		v, err := scrapeGauge(ctx, client, strings.TrimRight(*base, "/")+"/metrics", "responder_outbox_pending")
		if err != nil {
			return fail(stderr, err)
		}
		if v == 0 {
			_, _ = fmt.Fprintf(stdout, "outbox empty after %.1f s\n", time.Since(start).Seconds())
			return 0
		}
		last = v
		select {
		case <-ctx.Done():
			return fail(stderr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fail(stderr, fmt.Errorf("outbox still holds %.0f intents after %s", last, *timeout))
}

// scrapeGauge reads one unlabelled sample from a Prometheus text page.
func scrapeGauge(ctx context.Context, client *http.Client, u, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	return findSample(resp.Body, name)
}

func findSample(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return 0, fmt.Errorf("sample %s: %w", name, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, fmt.Errorf("no sample %s in the metrics", name)
}

// stormReport is the verdict on a storm run.
type stormReport struct {
	Groups           int      `json:"groups"`    // groups the load tool sent
	Incidents        int      `json:"incidents"` // incidents the daemon holds for them
	OtherIncidents   int      `json:"other_incidents"`
	AcceptedAlerts   int64    `json:"accepted_alerts"`
	StoredAlerts     int64    `json:"stored_alerts"`
	Lost             int64    `json:"lost"`
	HTTP5xx          int64    `json:"http_5xx"`
	SlackMessages    int      `json:"slack_messages"`
	Slack429         int64    `json:"slack_429"`
	MaxPerChannelSec int      `json:"max_messages_per_channel_per_second"`
	MinGapMS         float64  `json:"min_gap_ms"`
	Unannounced      int      `json:"unannounced"`
	AnnounceMaxS     float64  `json:"first_announcement_max_s"`
	AnnounceMedianS  float64  `json:"first_announcement_median_s"`
	AnnounceWithinS  float64  `json:"announce_within_s"`
	Pass             bool     `json:"pass"`
	Problems         []string `json:"problems"`
}

// stormCheckCmd reads the load tool's and the fake Slack's reports and the
// daemon's incidents, and checks the storm's targets.
func stormCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storm-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:9095", "base URL of the daemon")
	tokenOf := tokenFlags(fs, "bearer token with the read scope")
	loadPath := fs.String("load", "", "the load run's JSON report")
	slackPath := fs.String("slack", "", "the fake Slack's report")
	within := fs.Duration("within", 5*time.Second, "each incident's first announcement within this of its first alert")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := tokenOf()
	if err != nil {
		return fail(stderr, err)
	}
	var load report
	var sl slackReport
	for path, v := range map[string]any{*loadPath: &load, *slackPath: &sl} {
		b, err := readFile(path)
		if err != nil {
			return fail(stderr, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fail(stderr, fmt.Errorf("decode %s: %w", path, err))
		}
	}
	incs, err := listIncidents(ctx, *base, token)
	if err != nil {
		return fail(stderr, err)
	}
	rep := checkStorm(&load, &sl, incs, *within)
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_, _ = fmt.Fprintln(stdout, string(b))
	} else {
		_, _ = fmt.Fprintf(stdout, "storm: %d incidents for %d groups (%d others), %d alerts accepted, %d stored, %d lost, %d 5xx\n",
			rep.Incidents, rep.Groups, rep.OtherIncidents, rep.AcceptedAlerts, rep.StoredAlerts, rep.Lost, rep.HTTP5xx)
		_, _ = fmt.Fprintf(stdout, "  slack: %d messages, %d 429s, at most %d per channel in any second (closest two %.0f ms apart)\n",
			rep.SlackMessages, rep.Slack429, rep.MaxPerChannelSec, rep.MinGapMS)
		_, _ = fmt.Fprintf(stdout, "  first announcements: median %.2f s, max %.2f s after the group's first alert, %d never\n",
			rep.AnnounceMedianS, rep.AnnounceMaxS, rep.Unannounced)
		for _, p := range rep.Problems {
			_, _ = fmt.Fprintf(stdout, "  MISS: %s\n", p)
		}
	}
	return 0
}

// stormIncident is what the check needs of an incident.
type stormIncident struct {
	ID           string `json:"id"`
	DedupKey     string `json:"dedup_key"`
	AlertsTotal  int64  `json:"alerts_total"`
	SlackChannel string `json:"slack_channel"`
	SlackTS      string `json:"slack_ts"`
}

func listIncidents(ctx context.Context, base, token string) ([]stormIncident, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	var all []stormIncident
	before := ""
	for page := 0; page < 1000; page++ {
		u := strings.TrimRight(base, "/") + "/api/v1/incidents?limit=500"
		if before != "" {
			u += "&before=" + url.QueryEscape(before)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		var body struct {
			Incidents []stormIncident `json:"incidents"`
			Next      string          `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("list incidents: status %d", resp.StatusCode)
		}
		if err != nil {
			return nil, fmt.Errorf("decode incidents: %w", err)
		}
		all = append(all, body.Incidents...)
		if body.Next == "" {
			return all, nil
		}
		before = body.Next
	}
	return nil, errors.New("list incidents: more than 1000 pages")
}

// checkStorm compares what was sent, what the daemon holds and what the
// fake Slack received.
func checkStorm(load *report, sl *slackReport, incs []stormIncident, within time.Duration) stormReport {
	rep := stormReport{Groups: len(load.FirstSent), AcceptedAlerts: load.AcceptedAlerts, HTTP5xx: load.Status5xx,
		Slack429: sl.RateLimited, AnnounceWithinS: within.Seconds()}
	type key struct{ channel, ts string }
	posted := map[key]int64{}
	byChannel := map[string][]int64{}
	for _, p := range sl.Posts {
		if p.Method != slacktest.MethodPostMessage {
			continue
		}
		rep.SlackMessages++
		posted[key{p.Channel, p.TS}] = p.At
		byChannel[p.Channel] = append(byChannel[p.Channel], p.At)
	}
	rep.MinGapMS = -1
	for _, times := range byChannel {
		n, gap := maxInWindow(times, time.Second)
		rep.MaxPerChannelSec = max(rep.MaxPerChannelSec, n)
		if gap >= 0 && (rep.MinGapMS < 0 || float64(gap)/1e6 < rep.MinGapMS) {
			rep.MinGapMS = math.Round(float64(gap)/1e5) / 10
		}
	}
	var delays []float64
	for _, inc := range incs {
		first, ok := load.FirstSent[inc.DedupKey]
		if !ok {
			rep.OtherIncidents++
			continue
		}
		rep.Incidents++
		rep.StoredAlerts += inc.AlertsTotal
		at, ok := posted[key{inc.SlackChannel, inc.SlackTS}]
		if !ok {
			rep.Unannounced++
			continue
		}
		delays = append(delays, float64(at-first)/1e9)
	}
	rep.Lost = rep.AcceptedAlerts - rep.StoredAlerts
	if len(delays) > 0 {
		slices.Sort(delays)
		rep.AnnounceMaxS = math.Round(delays[len(delays)-1]*1000) / 1000
		rep.AnnounceMedianS = math.Round(median(delays)*1000) / 1000
	}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	check(rep.Incidents == rep.Groups && rep.OtherIncidents == 0, "%d incidents for %d groups (%d others)", rep.Incidents, rep.Groups, rep.OtherIncidents)
	check(rep.Lost == 0, "%d accepted alerts missing", rep.Lost)
	check(rep.HTTP5xx == 0, "%d answers 5xx", rep.HTTP5xx)
	check(rep.Slack429 == 0, "%d Slack 429s", rep.Slack429)
	check(rep.MaxPerChannelSec <= 1, "%d messages in one second to one channel", rep.MaxPerChannelSec)
	check(rep.Unannounced == 0, "%d incidents never announced", rep.Unannounced)
	check(rep.AnnounceMaxS <= within.Seconds(), "an announcement came %.2f s after its first alert", rep.AnnounceMaxS)
	rep.Pass = len(rep.Problems) == 0
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	return rep
}

// maxInWindow is the most of the times (Unix nanoseconds) that fall in any
// window [t, t+w), and the smallest gap between two of them (-1 for fewer
// than two).
func maxInWindow(times []int64, w time.Duration) (int, int64) {
	s := slices.Clone(times)
	slices.Sort(s)
	best, gap := 0, int64(-1)
	lo := 0
	for hi := range s {
		for s[hi]-s[lo] >= int64(w) {
			lo++
		}
		best = max(best, hi-lo+1)
		if hi > 0 && (gap < 0 || s[hi]-s[hi-1] < gap) {
			gap = s[hi] - s[hi-1]
		}
	}
	return best, gap
}
