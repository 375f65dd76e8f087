package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs "curvezmq demo" as a fresh machine would: no rsync, no ssh (PATH names an
// empty directory), no setup. It exits 0, narrates each step, and removes its directory.
func TestDemo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tmp := t.TempDir()
	r := h.runEnv([]string{"PATH=" + t.TempDir(), "TMPDIR=" + tmp}, "demo")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, want := range []string{
		"demo: 1. scheduler up on 127.0.0.1:",
		"demo: 2. add-target hpc: REMOTE INIT IN PROGRESS: remote-init runs as its own process, curvezmq remote-init hpc '$HOME/curvezmq-run/demo', the contact file on its stdin\n",
		"demo:    hpc: REMOTE FILE INSTALL DONE; its public key ",
		"demo:    file install with the rsync command's rules, in-process: only .service/server.key left .service (log/remote-install/01-start-hpc.log)\n",
		"demo:    the remote .service holds client.key_secret, client_hpc.key, contact, server.key\n",
		"demo: 3. a client on hpc (its own process, HOME=",
		`sends ping: "pong"`,
		"demo: 4. a stranger with the server's key but its own key pair is refused: ERROR 400 (client exit 3)\n",
		"demo: 5. remove-target hpc: its key is revoked, its open connection was closed, remote tidy left no key there\n",
		"demo: 6. hpc's old key is refused: ERROR 400; its client finds no keys there any more (exit 4)\n",
		"demo: 7. stop: the scheduler shut down; no key file and no contact file left under ",
		"demo: every step behaved\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the narration lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}

	// --keep keeps the directory, which holds no key.
	r = h.runEnv([]string{"PATH=" + t.TempDir(), "TMPDIR=" + tmp}, "demo", "--keep")
	dirs, _ := filepath.Glob(filepath.Join(tmp, "curvezmq-demo-*"))
	if r.code != 0 || len(dirs) != 1 || !strings.Contains(r.stdout, "demo: kept "+dirs[0]+"\n") {
		t.Fatalf("--keep: %v (%q)", r, dirs)
	}
	if left, err := keyFilesUnder(dirs[0]); err != nil || len(left) != 0 {
		t.Errorf("keys kept: %q, %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "run", "demo", "log", "scheduler", "log")); err != nil {
		t.Errorf("the scheduler log: %v", err)
	}
	expect(t, h.run("demo", "extra"), 1, "takes no arguments")
}
