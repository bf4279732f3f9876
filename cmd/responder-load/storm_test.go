package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMaxInWindow(t *testing.T) {
	s := int64(time.Second)
	for _, c := range []struct {
		times []int64
		n     int
		gap   int64
	}{
		{nil, 0, -1},
		{[]int64{5}, 1, -1},
		{[]int64{0, s, 2 * s, 3 * s}, 1, s},             // exactly one a second
		{[]int64{3 * s, 0, s + s/2, s + s/2 + 1}, 2, 1}, // unsorted, two close together
		{[]int64{0, s / 4, s / 2, s - 1, s}, 4, 1},
	} {
		n, gap := maxInWindow(c.times, time.Second)
		if n != c.n || gap != c.gap {
			t.Errorf("%v: %d in a second, gap %d; want %d, %d", c.times, n, gap, c.n, c.gap)
		}
	}
}

func TestCheckStorm(t *testing.T) {
	const sec = int64(time.Second)
	t0 := int64(1_000_000) * sec
	load := &report{AcceptedAlerts: 30, FirstSent: map[string]int64{"g1": t0, "g2": t0 + sec/2}}
	sl := &slackReport{Posts: []slackPost{
		{Method: "chat.postMessage", Channel: "C1", TS: "1.1", At: t0 + sec/10},
		{Method: "chat.postMessage", Channel: "C2", TS: "2.1", At: t0 + sec},
		{Method: "chat.postMessage", Channel: "C1", TS: "1.2", ThreadTS: "1.1", At: t0 + sec + sec/10},
		{Method: "chat.update", Channel: "C1", TS: "1.1", At: t0 + sec + sec/5}, // not a new message
	}}
	incs := []stormIncident{
		{ID: "INC-1", DedupKey: "g1", AlertsTotal: 20, SlackChannel: "C1", SlackTS: "1.1"},
		{ID: "INC-2", DedupKey: "g2", AlertsTotal: 10, SlackChannel: "C2", SlackTS: "2.1"},
	}
	rep := checkStorm(load, sl, incs, 5*time.Second)
	if !rep.Pass || rep.Incidents != 2 || rep.Lost != 0 || rep.SlackMessages != 3 || rep.MaxPerChannelSec != 1 ||
		rep.AnnounceMaxS != 0.5 || rep.AnnounceMedianS != 0.3 || rep.MinGapMS != 1000 {
		t.Errorf("good storm: %+v", rep)
	}

	// One alert missing, a third incident, a message too soon, a 5xx, a
	// 429, an incident never announced and one announced late.
	load.AcceptedAlerts, load.Status5xx = 31, 1
	sl.RateLimited = 1
	sl.Posts = append(sl.Posts, slackPost{Method: "chat.postMessage", Channel: "C2", TS: "2.2", At: t0 + sec + sec/2})
	incs[1].SlackTS = "2.9"
	incs = append(incs, stormIncident{ID: "INC-3", DedupKey: "other"})
	load.FirstSent["g1"] = t0 - 6*sec
	rep = checkStorm(load, sl, incs, 5*time.Second)
	if rep.Pass || len(rep.Problems) != 7 {
		t.Errorf("bad storm: want 7 problems, got %+v", rep)
	}
	for _, want := range []string{"2 incidents for 2 groups (1 others)", "1 accepted alerts missing", "1 answers 5xx", "1 Slack 429s",
		"2 messages in one second", "1 incidents never announced", "6.10 s after its first alert"} {
		if !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
			t.Errorf("problems lack %q: %v", want, rep.Problems)
		}
	}
}

func TestFindSample(t *testing.T) {
	page := "# HELP responder_outbox_pending x\n# TYPE responder_outbox_pending gauge\nresponder_outbox_pending_other 3\nresponder_outbox_pending 42\n"
	if v, err := findSample(strings.NewReader(page), "responder_outbox_pending"); err != nil || v != 42 {
		t.Errorf("got %v %v, want 42", v, err)
	}
	if _, err := findSample(strings.NewReader("up 1\n"), "responder_outbox_pending"); err == nil {
		t.Error("a missing sample found")
	}
}

func TestStatAndParseStatus(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, v := range []string{`{"a":{"b":3}}`, `{"a":{"b":1}}`, `{"a":{"b":2}}`} {
		f := filepath.Join(dir, string(rune('x'+i))+".json")
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for agg, want := range map[string]string{"median": "2", "mean": "2", "min": "1", "max": "3", "all": "3 1 2"} {
		var out, errOut strings.Builder
		if code := statCmd(append([]string{"--agg", agg, "a.b"}, files...), &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != want {
			t.Errorf("%s: exit %d, %q %s; want %s", agg, code, out.String(), errOut.String(), want)
		}
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Error("median of an even count")
	}
	if _, err := fieldValue([]byte(`{"a":"x"}`), "a"); err == nil {
		t.Error("a string taken as a number")
	}

	s, err := parseStatus([]byte("Name:\tresponder\nVmRSS:\t  204800 kB\nRssAnon:\t  150000 kB\nRssFile:\t   54800 kB\n"))
	if err != nil || s.rss != 204800 || s.anon != 150000 || s.file != 54800 {
		t.Errorf("parsed %+v %v", s, err)
	}
	if _, err := parseStatus([]byte("Name:\tkthread\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
	if ticks, err := parseStat([]byte("1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 2000 300")); err != nil || ticks != 300 {
		t.Errorf("stat: %d ticks %v, want 300", ticks, err)
	}
	if _, err := parseStat([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("a short stat parsed")
	}
	a, err := parseProcStat([]byte("cpu  100 10 50 1000 20 5 5 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil || a != (cpuTimes{busy: 170, idle: 1020, steal: 7}) {
		t.Errorf("/proc/stat: %+v %v", a, err)
	}
	if m := machineBetween(cpuTimes{}, cpuTimes{busy: 300, idle: 100, steal: 20}, 2); m.BusyCores != 1.5 || m.IdleCores != 0.5 || m.StealCores != 0.1 {
		t.Errorf("machine: %+v", m)
	}
	if _, err := parseProcStat([]byte("intr 1 2 3")); err == nil {
		t.Error("a /proc/stat without cpu totals parsed")
	}
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Errorf("cpu time of this process: %v", err)
	}
	if s, err := readRSS(os.Getpid()); err != nil || s.rss <= 0 {
		t.Errorf("this process: %+v %v", s, err)
	}
}

func TestLogLatency(t *testing.T) {
	log := `{"level":"info","method":"POST","path":"/api/v1/alerts/alertmanager","status":503,"latency":1.5,"message":"request"}
{"level":"info","method":"POST","path":"/api/v1/alerts/alertmanager","status":202,"latency":9,"message":"request"}
{"level":"info","method":"GET","path":"/readyz","status":503,"latency":7,"message":"request"}
not json
{"level":"info","method":"POST","path":"/api/v1/alerts/alertmanager","status":503,"latency":0.25,"message":"request"}
`
	h, err := logLatency(strings.NewReader(log), 503, ingestPath)
	if err != nil {
		t.Fatal(err)
	}
	if h.Count() != 2 || h.Max() != 1500*time.Microsecond || h.Quantile(0.5) < 250*time.Microsecond || h.Quantile(0.5) > 254*time.Microsecond {
		t.Errorf("count %d, max %v, median %v", h.Count(), h.Max(), h.Quantile(0.5))
	}
}
