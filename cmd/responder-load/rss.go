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
	// CPUCores is the CPU time the process used over the run (user and
	// system, from /proc/PID/stat) divided by the run's length.
	CPUCores float64 `json:"cpu_cores"`
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

// readCPU is the CPU time a process has used (user and system), from
// /proc/PID/stat, in clock ticks of 1/100 s (USER_HZ on Linux).
func readCPU(pid int) (int64, error) {
	b, err := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (int64, error) {
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after the last ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: too few fields", b)
	}
	var ticks int64
	for _, field := range f[11:13] {
		v, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: cpu time %q: %w", field, err)
		}
		ticks += v
	}
	return ticks, nil
}

// rssSampler reads a process's memory every interval until stopped, and
// its CPU time at the start and at the end.
type rssSampler struct {
	pid      int
	done     chan struct{}
	wg       sync.WaitGroup
	start    time.Time
	cpuStart int64

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
	cpu, err := readCPU(pid)
	if err != nil {
		return nil, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	s := &rssSampler{pid: pid, done: make(chan struct{}), start: time.Now(), cpuStart: cpu, samples: 1, peak: first.rss, last: first}
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
	var cores float64
	if cpu, err := readCPU(s.pid); err == nil {
		cores = math.Round(float64(cpu-s.cpuStart)/100/time.Since(s.start).Seconds()*100) / 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mib := func(kib int64) float64 { return math.Round(float64(kib)/1024*10) / 10 }
	return &rssReport{PID: s.pid, Samples: s.samples, PeakMiB: mib(s.peak), EndMiB: mib(s.last.rss),
		EndAnonMiB: mib(s.last.anon), EndFileMiB: mib(s.last.file), CPUCores: cores}
}

// cpuTimes are the machine's CPU times from the first line of /proc/stat,
// in ticks of 1/100 s summed over every CPU.
type cpuTimes struct{ busy, idle, steal int64 }

func readMachineCPU() (cpuTimes, error) {
	b, err := readFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads the "cpu" line: user nice system idle iowait irq
// softirq steal ...; idle and iowait count as idle, steal (time the
// hypervisor gave to others) apart.
func parseProcStat(b []byte) (cpuTimes, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: first line %q is not the cpu totals", line)
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(string(f[i+1]), 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %q: %w", f[i+1], err)
		}
		v[i] = n
	}
	return cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7]}, nil
}

// machineReport is how busy the whole machine was during a run, in cores:
// what neither the tool nor the sampled process used was used by others.
type machineReport struct {
	BusyCores  float64 `json:"busy_cores"`
	IdleCores  float64 `json:"idle_cores"`
	StealCores float64 `json:"steal_cores"`
	// OtherCores is busy minus this tool minus the sampled process (when
	// one is sampled): the load of other programs on the machine.
	OtherCores float64 `json:"other_cores"`
}

func machineBetween(a, b cpuTimes, secs float64) machineReport {
	cores := func(ticks int64) float64 { return math.Round(float64(ticks)/100/secs*100) / 100 }
	return machineReport{BusyCores: cores(b.busy - a.busy), IdleCores: cores(b.idle - a.idle), StealCores: cores(b.steal - a.steal)}
}
