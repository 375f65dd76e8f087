//go:build unix

package zap

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO among the key files is reported, never opened: opening it would block the scan.
func TestFIFONotOpened(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.key"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	k := newKey(t)
	writeKey(t, dir, "good.key", k)
	a := newAuth(t, Config{})
	configure(t, a, dir)
	if status(a, k) != 200 {
		t.Error("good key refused")
	}
	ds := domainStats(t, a, "*")
	if len(ds.BadFiles) != 1 || !strings.HasPrefix(ds.BadFiles[0], "pipe.key: not a regular file") {
		t.Errorf("bad files %q", ds.BadFiles)
	}
}
