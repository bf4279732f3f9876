package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// rssReport is the resident memory of a process over a run, from
// /proc/PID/status: VmRSS, and its anonymous (heap, stacks) and file-backed
// (the binary, the mapped database) parts.
type rssReport struct {
	PID        int     `json:"pid"`
	Samples    int     `json:"samples"`
	PeakMiB    float64 `json:"peak_mib"`
	EndMiB     float64 `json:"end_mib"`
	EndAnonMiB float64 `json:"end_anon_mib"`
	EndFileMiB float64 `json:"end_file_mib"`
}

// rssSample is one reading, in KiB.
type rssSample struct{ rss, anon, file int64 }

// readRSS reads the memory lines of /proc/PID/status.
func readRSS(pid int) (rssSample, error) {
	b, err := readFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssSample{}, err
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS, RssAnon and RssFile (in kB) from the text of
// /proc/PID/status.
func parseStatus(b []byte) (rssSample, error) {
	var s rssSample
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst, found = &s.rss, true
		case "RssAnon":
			dst = &s.anon
		case "RssFile":
			dst = &s.file
		default:
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			return rssSample{}, fmt.Errorf("status line %q: no value", sc.Bytes())
		}
		v, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return rssSample{}, fmt.Errorf("status line %q: %w", sc.Bytes(), err)
		}
		*dst = v
	}
	if !found {
		return rssSample{}, fmt.Errorf("no VmRSS line (is it a process?)")
	}
	return s, nil
}

// rssSampler reads a process's memory every interval until stopped.
type rssSampler struct {
	pid  int
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	samples int
	peak    int64
	last    rssSample
}

func startRSS(pid int, every time.Duration) (*rssSampler, error) {
	first, err := readRSS(pid)
	if err != nil {
		return nil, fmt.Errorf("sample memory of pid %d: %w", pid, err)
	}
	s := &rssSampler{pid: pid, done: make(chan struct{}), samples: 1, peak: first.rss, last: first}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				s.sample()
			}
		}
	})
	return s, nil
}

func (s *rssSampler) sample() {
	r, err := readRSS(s.pid)
	if err != nil {
		return // the process ended; keep what was seen
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.peak = max(s.peak, r.rss)
	s.last = r
}

// stop takes a last sample and reports.
func (s *rssSampler) stop() *rssReport {
	close(s.done)
	s.wg.Wait()
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	mib := func(kib int64) float64 { return math.Round(float64(kib)/1024*10) / 10 }
	return &rssReport{PID: s.pid, Samples: s.samples, PeakMiB: mib(s.peak), EndMiB: mib(s.last.rss),
		EndAnonMiB: mib(s.last.anon), EndFileMiB: mib(s.last.file)}
}
