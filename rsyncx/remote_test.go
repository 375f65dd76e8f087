package rsyncx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSSH is an "ssh command" for tests: sh runs a script whose $1 is the host and $2... the
// remote words, so the host name picks the behaviour. No real ssh runs.
const fakeSSH = `sh -c '
host=$1; shift
case $host in
ok) printf "banner\nKEYSTARTcert textKEYENDREMOTE INIT DONE\n" ;;
stdin) printf KEYSTART; cat; printf KEYEND ;;
argv) printf KEYSTART; printf "[%s]" "$@"; printf KEYEND ;;
nokey) printf "REMOTE INIT FAILED\n" ;;
fail3) echo "REMOTE INIT FAILED"; echo "key creation failed" >&2; exit 3 ;;
down) echo "ssh: connect to host down port 22: Connection refused" >&2; exit 255 ;;
big) head -c 300000 /dev/zero ;;
esac' fake-ssh`

func TestLocalTargetSkipsEverything(t *testing.T) {
	// Nothing else is valid: nothing may be looked at, let alone run.
	r := &Remote{Target: LocalTarget, Host: "-bad", SSHCommand: "'"}
	ir, err := r.Init(context.Background(), "../bad", nil)
	if err != nil || !ir.Skipped || ir.Status != StatusInstallDone || ir.Result != nil {
		t.Errorf("Init: %+v, %v", ir, err)
	}
	xr, err := r.Install(context.Background(), "relative", "../bad", "bad")
	if err != nil || !xr.Skipped || xr.Status != StatusInstallDone || xr.Result != nil {
		t.Errorf("Install: %+v, %v", xr, err)
	}
	if err := r.Tidy(context.Background(), "../bad"); err != nil {
		t.Errorf("Tidy: %v", err)
	}
}

func TestInitOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		host   string
		status Status
		cert   string
		is     error
		code   int
	}{
		{"ok", StatusInitDone, "cert text", nil, 0},
		{"nokey", StatusInitFailed, "", ErrBadOutput, 0},
		{"fail3", StatusInitFailed, "", nil, 3},
		{"down", StatusInit255, "", ErrUnreachable, 255},
		{"big", StatusInitFailed, "", ErrBadOutput, 0},
	} {
		r := &Remote{Host: c.host, Target: "hpc", SSHCommand: fakeSSH}
		res, err := r.Init(ctx, "flow/run1", nil)
		if res == nil || res.Status != c.status || string(res.Cert) != c.cert || res.Result == nil || res.Result.Code != c.code {
			t.Errorf("%s: %+v, %v", c.host, res, err)
			continue
		}
		if (err == nil) != (c.status == StatusInitDone) {
			t.Errorf("%s: error %v with status %s", c.host, err, res.Status)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v does not match %v", c.host, err, c.is)
		}
		var re *Error
		if err != nil && (!errors.As(err, &re) || re.Status != c.status || re.Op != "remote init" || re.Result != res.Result) {
			t.Errorf("%s: %#v", c.host, err)
		}
		if errors.Is(err, ErrUnreachable) != (c.status == StatusInit255) {
			t.Errorf("%s: %v: ErrUnreachable disagrees with the status", c.host, err)
		}
	}

	// The error says what happened, once prefixed, with the remote's complaint.
	r := &Remote{Host: "fail3", Target: "hpc", SSHCommand: fakeSSH}
	_, err := r.Init(ctx, "flow", nil)
	if want := "rsyncx: remote init of target hpc on fail3: sh exited with status 3: key creation failed"; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// Stdin reaches the remote command; the remote words arrive quoted for its shell.
	stream := []byte("tar\x00stream\n")
	r = &Remote{Host: "stdin", Target: "hpc", SSHCommand: fakeSSH}
	res, err := r.Init(ctx, "flow", bytes.NewReader(stream))
	if err != nil || !bytes.Equal(res.Cert, stream) {
		t.Errorf("stdin: %q, %v", res.Cert, err)
	}
	r = &Remote{Host: "argv", Target: "hpc", SSHCommand: fakeSSH}
	res, err = r.Init(ctx, "flow", nil)
	if want := `[curvezmq][remote-init][hpc]['$HOME/curvezmq-run/flow']`; err != nil || string(res.Cert) != want {
		t.Errorf("argv: %q, %v; want %q", res.Cert, err, want)
	}
}

func TestInitRefusesBeforeRunning(t *testing.T) {
	for _, r := range []*Remote{
		{Host: "ok", Target: "x;touch pwned"},
		{Host: "-oProxyCommand=touch pwned", Target: "hpc"},
		{Host: "ok", Target: "hpc", SSHCommand: "ssh 'unterminated"},
	} {
		r.SSHCommand = cmpOr(r.SSHCommand, fakeSSH)
		res, err := r.Init(context.Background(), "flow", nil)
		if !errors.Is(err, ErrInvalid) || res.Status != StatusInitFailed || res.Result != nil {
			t.Errorf("%+v: %+v, %v", r, res, err)
		}
	}
	res, err := (&Remote{Host: "ok", Target: "hpc", SSHCommand: fakeSSH}).Init(context.Background(), "../../.ssh", nil)
	if !errors.Is(err, ErrInvalid) || res.Result != nil {
		t.Errorf("hostile id: %+v, %v", res, err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestInstallOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fakeRsync := func(code string) string {
		return `sh -c 'echo "send .service/server.key"; echo "send app/foo"; echo "rsync: something" >&2; exit ` + code + `' rsync`
	}
	probe := func(code string) string { return `sh -c 'exit ` + code + `' ssh` }
	for _, c := range []struct {
		name          string
		rsync, ssh    string
		status        Status
		code          int
		probed        bool
		unreachable   bool
		probeExitCode int
	}{
		{"success", fakeRsync("0"), probe("0"), StatusInstallDone, 0, false, false, 0},
		{"rsync 255", fakeRsync("255"), probe("0"), StatusInstall255, 255, false, true, 0},
		{"rsync 12, probe 255", fakeRsync("12"), probe("255"), StatusInstall255, 12, true, true, 255},
		{"rsync 12, probe ok", fakeRsync("12"), probe("0"), StatusInstallFailed, 12, true, false, 0},
		{"rsync 23, probe 1", fakeRsync("23"), probe("1"), StatusInstallFailed, 23, true, false, 1},
	} {
		runDir := t.TempDir()
		r := &Remote{Host: "h", Target: "hpc", RsyncCommand: c.rsync, SSHCommand: c.ssh}
		res, err := r.Install(ctx, runDir, "flow", LoadRestart)
		if res.Status != c.status || res.Result == nil || res.Result.Code != c.code || (res.Probe != nil) != c.probed {
			t.Errorf("%s: %+v, %v", c.name, res, err)
			continue
		}
		if c.probed && res.Probe.Code != c.probeExitCode {
			t.Errorf("%s: probe exit %d", c.name, res.Probe.Code)
		}
		if (err == nil) != (c.status == StatusInstallDone) || errors.Is(err, ErrUnreachable) != c.unreachable {
			t.Errorf("%s: %v", c.name, err)
		}
		// The log is written whatever the outcome, since rsync printed something.
		log, rerr := os.ReadFile(filepath.Join(runDir, "log", "remote-install", "01-restart-hpc.log"))
		if rerr != nil || res.LogErr != nil || res.LogPath == "" ||
			!strings.HasSuffix(string(log), "\n\n### STDOUT:\nsend .service/server.key\nsend app/foo\n\n\n### STDERR:\nrsync: something\n") {
			t.Errorf("%s: log %q, %v, %v", c.name, log, rerr, res.LogErr)
		}
	}

	r := &Remote{Host: "h", Target: "hpc", RsyncCommand: `sh -c 'exit 12' rsync`, SSHCommand: probe("255")}
	_, err := r.Install(ctx, t.TempDir(), "flow", LoadStart)
	if want := "rsyncx: file install of target hpc on h: host unreachable (exit status 255) (sh -c exit 255 ssh h true exited 255 too): sh exited with status 12"; err == nil || err.Error() != want {
		t.Errorf("message %q\nwant %q", err, want)
	}

	for _, bad := range []struct {
		r      Remote
		runDir string
		load   LoadType
	}{
		{Remote{Host: "h", Target: "../x"}, t.TempDir(), LoadStart},
		{Remote{Host: "h", Target: "hpc"}, "relative", LoadStart},
		{Remote{Host: "h", Target: "hpc"}, t.TempDir(), "boot"},
		{Remote{Host: "h", Target: "hpc", Includes: []string{"../x"}}, t.TempDir(), LoadStart},
	} {
		res, err := bad.r.Install(ctx, bad.runDir, "flow", bad.load)
		if !errors.Is(err, ErrInvalid) || res.Status != StatusInstallFailed || res.Result != nil {
			t.Errorf("%+v: %+v, %v", bad, res, err)
		}
	}
}

func TestTidyOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (&Remote{Host: "ok", Target: "hpc", SSHCommand: fakeSSH}).Tidy(ctx, "flow"); err != nil {
		t.Errorf("ok: %v", err)
	}
	err := (&Remote{Host: "down", Target: "hpc", SSHCommand: fakeSSH}).Tidy(ctx, "flow")
	var re *Error
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &re) || re.Op != "remote tidy" {
		t.Errorf("down: %v", err)
	}
	if err := (&Remote{Host: "fail3", Target: "hpc", SSHCommand: fakeSSH}).Tidy(ctx, "flow"); err == nil || errors.Is(err, ErrUnreachable) {
		t.Errorf("fail3: %v", err)
	}
	if err := (&Remote{Host: "ok", Target: "a b", SSHCommand: fakeSSH}).Tidy(ctx, "flow"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad target: %v", err)
	}
}
