package rsyncx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/rsyncx"
)

// TestLoopback runs the three remote steps against a directory standing in for a remote home,
// with the fake remote program as a child process: the same statuses, certificate and install
// log as over ssh, with the copier in place of rsync.
func TestLoopback(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "bin", "fake-curvezmq"), fakeRemote, 0o755)
	writeFile(t, filepath.Join(home, "cert.txt"), certText, 0o644)
	runDir := filepath.Join(t.TempDir(), "wf")
	contact := "CYLC_WORKFLOW_ID=wf\n"
	writeFile(t, filepath.Join(runDir, ".service", "contact"), contact, 0o600)
	writeFile(t, filepath.Join(runDir, ".service", "server.key"), "server public\n", 0o600)
	writeFile(t, filepath.Join(runDir, ".service", "server.key_secret"), "server secret\n", 0o600)
	writeFile(t, filepath.Join(runDir, "app", "a"), "a\n", 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	l := &rsyncx.Loopback{Target: "ok", Home: home, Command: []string{filepath.Join(home, "bin", "fake-curvezmq")}}
	var stream bytes.Buffer
	if err := rsyncx.WriteContactTar(&stream, filepath.Join(runDir, ".service")); err != nil {
		t.Fatal(err)
	}
	res, err := l.Init(ctx, "wf", &stream)
	if err != nil || res.Status != rsyncx.StatusInitDone || string(res.Cert) != certText {
		t.Fatalf("Init: %+v, %v", res, err)
	}
	argv, _ := os.ReadFile(filepath.Join(home, "argv-remote-init-ok.txt"))
	if string(argv) != "remote-init\nok\n$HOME/curvezmq-run/wf\n" {
		t.Errorf("remote argv %q", argv)
	}
	f, _ := os.Open(filepath.Join(home, "stdin-remote-init-ok.bin"))
	got, err := rsyncx.ReadContactTar(f)
	f.Close()
	if err != nil || string(got) != contact {
		t.Errorf("contact over the pipe %q, %v", got, err)
	}

	xr, err := l.Install(ctx, runDir, "wf", rsyncx.LoadStart)
	if err != nil || xr.Status != rsyncx.StatusInstallDone {
		t.Fatalf("Install: %+v, %v", xr, err)
	}
	remote := filepath.Join(home, "curvezmq-run", "wf")
	if b, _ := os.ReadFile(filepath.Join(remote, ".service", "server.key")); string(b) != "server public\n" {
		t.Errorf("remote server.key %q", b)
	}
	if _, err := os.Lstat(filepath.Join(remote, ".service", "server.key_secret")); err == nil {
		t.Error("server.key_secret was copied")
	}
	log, err := os.ReadFile(filepath.Join(runDir, "log", "remote-install", "01-start-ok.log"))
	if err != nil || xr.LogPath == "" || !strings.Contains(string(log), "\nsend .service/server.key\n") ||
		!strings.HasPrefix(string(log), "$ (in-process copy) --delete --include=/.service/") {
		t.Errorf("install log %q, %v", log, err)
	}

	if err := l.Tidy(ctx, "wf"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "argv-remote-tidy-ok.txt")); err != nil {
		t.Errorf("remote-tidy did not run: %v", err)
	}

	// Failures keep their statuses; the local target skips everything.
	fail := &rsyncx.Loopback{Target: "fail", Home: home, Command: l.Command}
	if res, err := fail.Init(ctx, "wf", nil); res.Status != rsyncx.StatusInitFailed || err == nil ||
		!strings.Contains(err.Error(), "key creation failed") {
		t.Errorf("failing remote-init: %+v, %v", res, err)
	}
	lost := &rsyncx.Loopback{Target: "ok", Home: filepath.Join(home, "nowhere"), Command: l.Command}
	if xr, err := lost.Install(ctx, runDir, "wf", rsyncx.LoadStart); xr.Status != rsyncx.StatusInstallFailed || err == nil {
		t.Errorf("install without the remote run directory's parent: %+v, %v", xr, err)
	}
	local := &rsyncx.Loopback{Target: rsyncx.LocalTarget}
	if res, err := local.Init(ctx, "wf", nil); err != nil || !res.Skipped || res.Status != rsyncx.StatusInstallDone {
		t.Errorf("localhost: %+v, %v", res, err)
	}
	bad := &rsyncx.Loopback{Target: "ok", Home: "relative", Command: l.Command}
	if _, err := bad.Init(ctx, "wf", nil); !errors.Is(err, rsyncx.ErrInvalid) {
		t.Errorf("relative home: %v", err)
	}
}
