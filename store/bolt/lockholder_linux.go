package bolt

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder is the pid of the process holding the flock on path, read
// from /proc/locks (a line per lock: "1: FLOCK ADVISORY WRITE <pid>
// <major>:<minor>:<inode> 0 EOF", the device numbers in hex).
func lockHolder(path string) (int, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	dev := uint64(st.Dev) //nolint:unconvert // the field's type differs by architecture
	want := fmt.Sprintf("%02x:%02x:%d", (dev>>8)&0xfff|(dev>>32)&^0xfff, dev&0xff|(dev>>12)&^0xff, st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// "1:" "FLOCK" "ADVISORY" "WRITE" pid dev:ino ...; a waiter's line
		// starts with "->" and is skipped.
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid, true
		}
	}
	return 0, false
}
