package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heldSocket listens on a free loopback port and holds it until the test
// ends. The daemons the test starts are handed it (systemd socket
// activation, see activated), so no other process can take the port
// between finding it and using it, nor between two runs of the daemon.
func heldSocket(t *testing.T) (sock *os.File, addr string) {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock, err = ln.(*net.TCPListener).File() // a duplicate: the socket stays bound and listening
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	t.Cleanup(func() { _ = sock.Close() })
	return sock, addr
}

// activated is a command that runs bin with args as a service manager
// starts a socket-activated daemon: sock as file descriptor 3, LISTEN_FDS=1,
// and LISTEN_PID set to the daemon's own pid (a shell exports its pid and
// replaces itself with bin). wrap, when given, runs before the shell
// (strace, say) and is traced with it.
func activated(sock *os.File, wrap []string, bin string, args ...string) *exec.Cmd {
	argv := append(append(wrap, "/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{sock}
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	return cmd
}

// servingAddr waits (bounded) for the "responder serving" line of an
// in-process daemon started with --listen 127.0.0.1:0 and returns the
// address it bound: the kernel chose a free port and the daemon holds it
// from then on.
func servingAddr(t *testing.T, logs *syncBuffer, done <-chan int) string {
	t.Helper()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
			}
			switch {
			case json.Unmarshal([]byte(line), &entry) == nil:
				if entry.Message == "responder serving" && entry.Listen != "" {
					return entry.Listen
				}
			case strings.Contains(line, "responder serving"): // the console format
				for _, field := range strings.Fields(line) {
					if addr, ok := strings.CutPrefix(field, "listen="); ok {
						return addr
					}
				}
			}
		}
		select { // the next line written, the daemon's end, or the bound
		case <-logs.written():
		case code := <-done:
			t.Fatalf("serve exited with %d before serving:\n%s", code, logs.String())
		case <-timeout.C:
			t.Fatalf("no \"responder serving\" line within 15s:\n%s", logs.String())
		}
	}
}

// A socket passed by a service manager is used as it is; one meant for
// another process, or more than one, is refused with a message that says
// what to do; without tokens it must be loopback, like the listen address.
func TestListenSocket(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	ctx := context.Background()
	ln, inherited, err := listenSocket(ctx, "127.0.0.1:0", noEnv)
	if err != nil || inherited {
		t.Fatalf("without LISTEN_FDS: %v, inherited %v", err, inherited)
	}
	_ = ln.Close()
	for _, tc := range []struct {
		name string
		env  func(string) string
		want string
	}{
		{"another process's sockets", env("LISTEN_FDS", "1", "LISTEN_PID", "1"), "is not this process"},
		{"no pid", env("LISTEN_FDS", "1"), "is not this process"},
		{"two sockets", env("LISTEN_FDS", "2", "LISTEN_PID", strconv.Itoa(os.Getpid())), "pass exactly one"},
	} {
		if _, _, err := listenSocket(ctx, "127.0.0.1:0", tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if err := checkInheritedSocket(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9095}, 0); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("non-loopback socket without tokens: %v, want refused", err)
	}
	for _, ok := range []struct {
		addr   net.Addr
		tokens int
	}{{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9095}, 1}, {&net.TCPAddr{IP: net.IPv6loopback, Port: 9095}, 0}} {
		if err := checkInheritedSocket(ok.addr, ok.tokens); err != nil {
			t.Errorf("%s with %d tokens: %v, want accepted", ok.addr, ok.tokens, err)
		}
	}
}
