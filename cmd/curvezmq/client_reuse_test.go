package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/curvezmq/curvezmq/keystore"
)

// TestClientDeadSchedulerPortReused: a scheduler that died, whose port another workflow's
// scheduler has since taken (ports come from one shared range): the other scheduler cannot
// open HELLO (a different server key) and hangs up. The client says "not running" (4) and
// removes the stale contact file, as after a timeout, not "refused" (3).
func TestClientDeadSchedulerPortReused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	otherRun := filepath.Join(t.TempDir(), "other")
	s := h.startScheduler(otherRun)
	c := s.waitContact()
	port, _ := strconv.Atoi(c[keystore.ContactPort])
	runDir := fakeRunDir(t, "dead", port, deadPID(t), "curvezmq scheduler")
	// fakeRunDir's keys: client.key_secret and server.key of its own (never our other scheduler's).
	r := h.run("client", "--run-dir", runDir, "--timeout", "2s", "ping")
	t.Logf("%v", r)
	if r.code != exitNotRunning {
		t.Errorf("exit %d, want %d (the scheduler named in the contact file is dead)", r.code, exitNotRunning)
	}
	if _, err := os.Lstat(filepath.Join(keystore.ServiceDir(runDir), keystore.ContactFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale contact file kept: %v", err)
	}
	s.signal(syscall.SIGTERM)
	s.wait()
}
