package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoteInitHalfWrittenKeysRemoved: when client_<target>.key cannot be written after
// client.key_secret was, remote-init exits 3 and leaves no secret key. The failure is made
// with RLIMIT_FSIZE between the two files' sizes (secret about 313 bytes, public about
// 357), so the secret's write succeeds and the public one's fails (EFBIG).
func TestRemoteInitHalfWrittenKeysRemoved(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit (util-linux)")
	}
	prog := program(t)
	home := t.TempDir()
	runDir := filepath.Join(home, "curvezmq-run", "flow")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prlimit, "--fsize=330", prog, "remote-init", "hpc", runDir)
	cmd.Env = append(os.Environ(), "HOME="+home, "GORACE=atexit_sleep_ms=0")
	cmd.Stdin = contactTar(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	t.Logf("exit %d (%v)\nstdout %q\nstderr %q", code, err, out.String(), errb.String())
	if code != 3 {
		t.Fatalf("want exit 3 (key creation failed), got %d", code)
	}
	sec := filepath.Join(runDir, ".service", "client.key_secret")
	if data, err := os.ReadFile(sec); err == nil {
		t.Errorf("exit 3 left a secret key behind: %s (%d bytes, holds secret-key: %v)", sec, len(data), strings.Contains(string(data), "secret-key"))
	}
}

// TestRemoteInitServiceSymlinkRefused: remote-init with a .service that is a symlink to
// another directory (say another run's .service on the same host) exits 3 and leaves the
// keys there as they were: the link is refused, never followed.
func TestRemoteInitServiceSymlinkRefused(t *testing.T) {
	home := t.TempDir()
	other := filepath.Join(home, "curvezmq-run", "other", ".service")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"client.key_secret", "client_hpc.key"} {
		if err := os.WriteFile(filepath.Join(other, n), []byte("other run's key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runDir := filepath.Join(home, "curvezmq-run", "flow")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(runDir, ".service")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(home, contactTar(t), "remote-init", "hpc", "$HOME/curvezmq-run/flow")
	t.Logf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	var gone []string
	for _, n := range []string{"client.key_secret", "client_hpc.key"} {
		if data, err := os.ReadFile(filepath.Join(other, n)); err != nil || string(data) != "other run's key\n" {
			gone = append(gone, n)
		}
	}
	if len(gone) > 0 {
		t.Errorf("remote-init (exit %d) through a symlinked .service destroyed %v in %s", code, gone, other)
	}
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
}
