//go:build linux

package main

// The daemon under strace: for every webhook answered 2xx, the page that
// holds its alert is written (pwrite64 to responder.db), then the file is
// synced twice (bbolt's commit: data pages, then the meta page), and only
// then does the answer leave on the request's socket. This is the
// fsync-before-2xx order seen from the kernel's side, which kill -9 cannot
// show (the page cache outlives the process). It runs when strace is
// installed (`make crash-test` installs it) and the kernel lets it trace.

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	straceRequests = 40
	stracePosters  = 4
)

// straceMarker is the fingerprint of a webhook's alert: it shows in the
// request read from the socket and in the page written to the file.
var straceMarker = regexp.MustCompile(`f5ync[0-9a-f]{11}`)

func TestFsyncBeforeAnswerUnderStrace(t *testing.T) {
	if testing.Short() {
		t.Skip("strace test: skipped with -short")
	}
	straceBin, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed (make test and make crash-test install it): the fsync order is checked by TestAnswerWaitsForDurableCommit only")
	}
	if out, err := exec.Command(straceBin, "-qq", "-e", "trace=none", "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here (%v): %s", err, bytes.TrimSpace(out))
	}
	bin := e2eBuild(t)
	dir := t.TempDir()
	sock, addr := heldSocket(t)
	cfg := filepath.Join(dir, "responder.yml")
	e2eWriteFile(t, cfg, fmt.Sprintf("listen: %s\ndata_dir: %s\nlog:\n  level: warn\n  format: json\n", addr, filepath.Join(dir, "data")))
	tracePath := filepath.Join(dir, "trace")
	logPath := filepath.Join(dir, "responder.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := activated(sock, []string{straceBin, "-f", "-qq", "-y", "-s", "65536", "-e", "signal=none",
		"-e", "trace=fdatasync,fsync,pwrite64,read,write,writev", "-o", tracePath}, bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start strace: %v", err)
	}
	p := &e2eProcess{name: "responder under strace", cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			e2eLogTail(t, p.name, logPath)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	e2eWaitReady(t, p, client, "http://"+addr+"/readyz")

	var wg sync.WaitGroup
	errs := make(chan error, straceRequests)
	for w := range stracePosters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < straceRequests; i += stracePosters {
				fp := fmt.Sprintf("f5ync%011x", i)
				body := amBody(&crashGroup{key: fmt.Sprintf(`{}:{alertname="Sync%d"}`, i), name: fmt.Sprintf("Sync%d", i),
					fingerprints: []string{fp}, labels: map[string]string{"alertname": fmt.Sprintf("Sync%d", i)}}, "firing")
				resp, err := client.Post("http://"+addr+"/api/v1/alerts/alertmanager", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("%s: answered %d", fp, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("webhook: %v", err)
	}
	// A clean stop flushes strace's output.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("responder under strace did not stop within 30s of SIGTERM")
	}

	calls, err := readStrace(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	checked, problems := checkSyncBeforeAnswer(calls)
	for _, p := range problems {
		t.Error(p)
	}
	if checked != straceRequests {
		t.Errorf("checked %d answers in the trace, want %d", checked, straceRequests)
	}
	t.Logf("strace: %d webhook answers, each written after its page and two fdatasyncs of responder.db", checked)
}

// straceCall is one system call from an strace -f -y log: its entry and
// completion positions (equal unless it was interrupted by another
// thread's output), its first argument's fd path, the rest, its result.
type straceCall struct {
	name        string
	path        string // "socket:[123]", "/.../responder.db"
	args        string
	ret         int64
	entry, done int
}

var (
	straceLine     = regexp.MustCompile(`^(\d+) +(.*)$`) // strace pads short pids with spaces
	straceResumed  = regexp.MustCompile(`^<\.\.\. (\w+) resumed>(.*)$`)
	straceStart    = regexp.MustCompile(`^(\w+)\((.*)$`)
	straceFD       = regexp.MustCompile(`^\d+<([^>]*)>`)
	straceReturned = regexp.MustCompile(`\) += (-?\d+)`)
)

func readStrace(path string) ([]straceCall, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var calls []straceCall
	pending := map[string]*straceCall{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	finish := func(c *straceCall, tail string, at int) {
		c.done = at
		c.args += tail
		if m := straceReturned.FindAllStringSubmatch(tail, -1); len(m) > 0 {
			c.ret, _ = strconv.ParseInt(m[len(m)-1][1], 10, 64)
		} else {
			c.ret = -1
		}
		if m := straceFD.FindStringSubmatch(c.args); m != nil {
			c.path = m[1]
		}
		calls = append(calls, *c)
	}
	for i := 0; sc.Scan(); i++ {
		m := straceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, rest := m[1], m[2]
		if r := straceResumed.FindStringSubmatch(rest); r != nil {
			if c := pending[pid]; c != nil && c.name == r[1] {
				delete(pending, pid)
				finish(c, r[2], i)
			}
			continue
		}
		s := straceStart.FindStringSubmatch(rest)
		if s == nil {
			continue // +++ exited, --- signals
		}
		c := &straceCall{name: s[1], entry: i}
		if body, ok := strings.CutSuffix(s[2], " <unfinished ...>"); ok {
			c.args = body
			pending[pid] = c
			continue
		}
		finish(c, s[2], i)
	}
	return calls, sc.Err()
}

// checkSyncBeforeAnswer checks every 2xx answer in calls: the last request
// read on its socket names a marker; the first page write holding that
// marker, then two completed fdatasyncs of the database, all come before
// the answer's write begins. It returns how many answers it checked.
func checkSyncBeforeAnswer(calls []straceCall) (int, []string) {
	var problems []string
	checked := 0
	isDB := func(c straceCall) bool { return strings.HasSuffix(c.path, dbFile) }
	for _, ans := range calls {
		if (ans.name != "write" && ans.name != "writev") || !strings.HasPrefix(ans.path, "socket:") ||
			!strings.Contains(ans.args, `"HTTP/1.1 2`) {
			continue
		}
		marker := ""
		for _, c := range calls {
			if c.name == "read" && c.path == ans.path && c.ret > 0 && c.done < ans.entry {
				if m := straceMarker.FindString(c.args); m != "" {
					marker = m
				}
			}
		}
		if marker == "" {
			continue // not a webhook of this test (a health check)
		}
		checked++
		written := -1
		for _, c := range calls {
			if c.name == "pwrite64" && isDB(c) && strings.Contains(c.args, marker) {
				written = c.done
				break
			}
		}
		if written < 0 || written > ans.entry {
			problems = append(problems, fmt.Sprintf("%s: answered (trace line %d) before its page was written (line %d)", marker, ans.entry+1, written+1))
			continue
		}
		syncs := 0
		for _, c := range calls {
			if c.name == "fdatasync" && isDB(c) && c.ret == 0 && c.entry > written && c.done < ans.entry {
				syncs++
			}
		}
		if syncs < 2 {
			problems = append(problems, fmt.Sprintf("%s: answered (trace line %d) after %d fdatasync of its commit, want 2 (data, then meta)", marker, ans.entry+1, syncs))
		}
	}
	return checked, problems
}

// TestCheckSyncBeforeAnswerFails: the checker itself catches an answer
// written before the commit's second sync, and one written before the page.
// (The third request has a padded pid, as strace prints pids shorter than
// five digits.)
func TestCheckSyncBeforeAnswerFails(t *testing.T) {
	trace := `10 read(9<socket:[1]>, "POST /api/v1/alerts/alertmanager ... \"fingerprint\":\"f5ync00000000001\"", 4096) = 300
10 pwrite64(5</d/responder.db>, "...f5ync00000000001...", 4096, 8192) = 4096
10 fdatasync(5</d/responder.db>) = 0
11 write(9<socket:[1]>, "HTTP/1.1 202 Accepted\r\n", 23 <unfinished ...>
10 fdatasync(5</d/responder.db>) = 0
11 <... write resumed>) = 23
12 read(7<socket:[2]>, "POST ... f5ync00000000002", 4096) = 300
12 write(7<socket:[2]>, "HTTP/1.1 202 Accepted\r\n", 23) = 23
10 pwrite64(5</d/responder.db>, "...f5ync00000000002...", 4096, 8192) = 4096
10 fdatasync(5</d/responder.db>) = 0
10 fdatasync(5</d/responder.db>) = 0
13  read(8<socket:[3]>, "POST ... f5ync00000000003", 4096) = 300
10 pwrite64(5</d/responder.db>, "...f5ync00000000003...", 4096, 8192) = 4096
10 fdatasync(5</d/responder.db>) = 0
10 fdatasync(5</d/responder.db>) = 0
13  write(8<socket:[3]>, "HTTP/1.1 202 Accepted\r\n", 23) = 23
`
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	calls, err := readStrace(path)
	if err != nil {
		t.Fatal(err)
	}
	checked, problems := checkSyncBeforeAnswer(calls)
	if checked != 3 || len(problems) != 2 ||
		!strings.Contains(problems[0], "f5ync00000000001") || !strings.Contains(problems[0], "after 1 fdatasync") ||
		!strings.Contains(problems[1], "f5ync00000000002") || !strings.Contains(problems[1], "before its page") {
		t.Fatalf("checked %d, problems %q; want 3 checked and the first two caught", checked, problems)
	}
}
