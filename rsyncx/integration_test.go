package rsyncx_test

// Tests against real ssh, sshd and rsync: each remote host is an sshd in network namespaces
// (internal/testbed). They need root and skip without it.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/internal/testbed"
	"github.com/curvezmq/curvezmq/rsyncx"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

// fakeRemote stands in for "curvezmq" on the remote host (phase B brings the real one). It
// records its argv as received and its stdin, expands $HOME in the run directory itself, and
// behaves as its install target name asks.
const fakeRemote = `#!/bin/sh
sub=$1 target=$2 rundir=$3
printf '%s\n' "$@" >"$HOME/argv-$sub-$target.txt"
cat >"$HOME/stdin-$sub-$target.bin"
case $rundir in
'$HOME/'*) rundir=$HOME/${rundir#'$HOME/'} ;;
*) echo "REMOTE INIT FAILED"; echo "run directory not under \$HOME: $rundir" >&2; exit 1 ;;
esac
[ "$sub" = remote-tidy ] && exit 0
case $target in
ok*)
	mkdir -p "$rundir/.service"
	echo "Welcome to the test bed"
	printf KEYSTART; cat "$HOME/cert.txt"; printf 'KEYENDREMOTE INIT DONE\n' ;;
nokeystart) printf 'REMOTE INIT FAILED\nUnexpected key directory exists\n' ;;
partial) printf 'KEYSTART#   ****  Generated on' ;;
partialkill) printf 'KEYSTART#   ****  Generated on'; kill -9 $$ ;;
fail) echo "REMOTE INIT FAILED"; echo "key creation failed" >&2; exit 3 ;;
hang) printf KEYSTART; exec sleep 3600 ;;
esac
`

// certText is a public certificate as the remote prints it.
const certText = `#   ****  Generated on 2025-03-04 10:11:12.123456 by pyzmq  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
`

// faultSSH is the ssh command of the fault tests: it replaces the default whole, with a short
// connect timeout.
const faultSSH = "ssh -oBatchMode=yes -oConnectTimeout=2"

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// installFake puts the fake remote program and its certificate in the host's remote home.
func installFake(t *testing.T, h *testbed.Host) {
	t.Helper()
	if err := h.WriteFile("bin/fake-curvezmq", []byte(fakeRemote), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile("cert.txt", []byte(certText), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remoteFile(t *testing.T, h *testbed.Host, rel string) string {
	t.Helper()
	b, err := os.ReadFile(h.LocalPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestInitOverSSH runs remote-init through real ssh: the remote program receives its
// arguments as built (the run directory with $HOME unexpanded), the tar stream on stdin, and
// its certificate comes back verbatim past a login banner. Then remote-tidy.
func TestInitOverSSH(t *testing.T) {
	h := testbed.Shared(t)
	installFake(t, h)
	srv := filepath.Join(t.TempDir(), ".service")
	contact := "CYLC_WORKFLOW_ID=flow/run1\nCYLC_WORKFLOW_PORT=43001\n"
	writeFile(t, filepath.Join(srv, "contact"), contact, 0o600)

	for _, login := range []bool{false, true} {
		target := "ok"
		if login {
			target = "ok.login"
		}
		var stream bytes.Buffer
		if err := rsyncx.WriteContactTar(&stream, srv); err != nil {
			t.Fatal(err)
		}
		r := &rsyncx.Remote{Host: h.Env.Host, Target: target, RemoteCommand: "bin/fake-curvezmq", LoginShell: login}
		res, err := r.Init(ctxFor(t, 30*time.Second), "flow/run1", &stream)
		if err != nil {
			t.Fatalf("login shell %v: %v", login, err)
		}
		if res.Status != rsyncx.StatusInitDone || string(res.Cert) != certText {
			t.Errorf("login shell %v: status %s, cert %q", login, res.Status, res.Cert)
		}
		if got, want := remoteFile(t, h, "argv-remote-init-"+target+".txt"), "remote-init\n"+target+"\n$HOME/curvezmq-run/flow/run1\n"; got != want {
			t.Errorf("login shell %v: remote argv %q, want %q", login, got, want)
		}
		f, err := os.Open(h.LocalPath("stdin-remote-init-" + target + ".bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := rsyncx.ReadContactTar(f)
		f.Close()
		if err != nil || string(got) != contact {
			t.Errorf("login shell %v: contact over stdin %q, %v", login, got, err)
		}
		// The remote expanded $HOME itself: the run directory is in the remote home.
		if fi, err := os.Stat(h.LocalPath("curvezmq-run/flow/run1/.service")); err != nil || !fi.IsDir() {
			t.Errorf("login shell %v: remote run directory: %v", login, err)
		}
	}

	r := &rsyncx.Remote{Host: h.Env.Host, Target: "ok", RemoteCommand: "bin/fake-curvezmq"}
	if err := r.Tidy(ctxFor(t, 30*time.Second), "flow/run1"); err != nil {
		t.Fatal(err)
	}
	if got, want := remoteFile(t, h, "argv-remote-tidy-ok.txt"), "remote-tidy\nok\n$HOME/curvezmq-run/flow/run1\n"; got != want {
		t.Errorf("remote-tidy argv %q, want %q", got, want)
	}
	if got := remoteFile(t, h, "stdin-remote-tidy-ok.bin"); got != "" {
		t.Errorf("remote-tidy stdin %q, want empty", got)
	}
}

// TestInstallOverSSH runs the file install through real rsync and ssh (the default ssh
// command, through the test bed's system-wide client configuration): only .service/server.key
// leaves .service, with its 0600 mode; the allowed directories and the extra items arrive;
// log, share, work and anything else do not; what the remote holds in .service survives
// --delete; the install log records it.
func TestInstallOverSSH(t *testing.T) {
	h := testbed.Shared(t)
	runDir := filepath.Join(t.TempDir(), "flow", "inst")
	for name, mode := range map[string]os.FileMode{
		".service/server.key":                      0o600,
		".service/server.key_secret":               0o600,
		".service/client.key_secret":               0o600,
		".service/client_public_keys/client_x.key": 0o600,
		".service/contact":                         0o600,
		"log/scheduler/log":                        0o644,
		"share/s":                                  0o644,
		"work/w":                                   0o644,
		"app/foo":                                  0o644,
		"app/log/kept":                             0o644, // the excludes are anchored
		"ana/a":                                    0o644,
		"bin/b":                                    0o755,
		"etc/e":                                    0o644,
		"lib/python/l":                             0o644,
		"data/d":                                   0o644, // an extra directory item
		"notes.txt":                                0o644, // an extra file item
		"flow.cylc":                                0o644,
		"other/o":                                  0o644,
	} {
		writeFile(t, filepath.Join(runDir, name), "content of "+name+"\n", mode)
	}
	// What remote-init left on the remote: rsync must not delete it. The host is shared
	// with earlier runs (go test -count=N): start from an empty remote run directory, or
	// rsync finds everything in place, prints nothing, and no install log is written.
	remoteRun := "curvezmq-run/flow/inst"
	if err := os.RemoveAll(h.LocalPath(remoteRun)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".service/contact", ".service/client.key_secret", ".service/client_hpc.key"} {
		if err := h.WriteFile(remoteRun+"/"+name, []byte("remote "+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", Includes: []string{"data/", "notes.txt"}}
	res, err := r.Install(ctxFor(t, time.Minute), runDir, "flow/inst", rsyncx.LoadStart)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != rsyncx.StatusInstallDone {
		t.Fatalf("status %s", res.Status)
	}

	var got []string
	base := h.LocalPath(remoteRun)
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{
		".service/client.key_secret", ".service/client_hpc.key", ".service/contact", ".service/server.key",
		"ana/a", "app/foo", "app/log/kept", "bin/b", "data/d", "etc/e", "lib/python/l", "notes.txt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("remote run directory holds\n%q\nwant\n%q", got, want)
	}
	fi, err := os.Stat(filepath.Join(base, ".service", "server.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("remote server.key: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if got := remoteFile(t, h, remoteRun+"/.service/server.key"); got != "content of .service/server.key\n" {
		t.Errorf("remote server.key holds %q", got)
	}
	if got := remoteFile(t, h, remoteRun+"/.service/contact"); got != "remote .service/contact\n" {
		t.Errorf("the remote's contact file was replaced: %q", got)
	}

	log, err := os.ReadFile(filepath.Join(runDir, "log", "remote-install", "01-start-hpc.log"))
	if err != nil || res.LogPath == "" {
		t.Fatalf("install log: %v (path %q, write error %v)", err, res.LogPath, res.LogErr)
	}
	for _, line := range []string{"send .service/server.key", "send app/foo", "send data/d", "send notes.txt"} {
		if !strings.Contains(string(log), "\n### STDOUT:\n") || !strings.Contains(string(log), "\n"+line+"\n") {
			t.Errorf("install log lacks %q:\n%s", line, log)
		}
	}
	if !strings.HasPrefix(string(log), "$ rsync --delete --rsh=ssh -oBatchMode=yes -oConnectTimeout=10 \\ \n    --include=/.service/") {
		t.Errorf("install log starts %q", log[:min(len(log), 120)])
	}
	for _, leaked := range []string{"server.key_secret", "client.key_secret", "client_public_keys", "contact"} {
		if strings.Contains(string(log), leaked) {
			t.Errorf("install log mentions %s:\n%s", leaked, log)
		}
	}
}

// initFault runs remote-init against h and checks the status, the exit code seen and the
// error's kind.
func initFault(t *testing.T, r *rsyncx.Remote, status rsyncx.Status, code int, is error) *rsyncx.InitResult {
	t.Helper()
	res, err := r.Init(ctxFor(t, 30*time.Second), "flow/run1", nil)
	if err == nil {
		t.Fatalf("remote-init succeeded: %+v", res)
	}
	t.Logf("%v", err)
	if res.Status != status || res.Cert != nil {
		t.Errorf("status %s, cert %q; want %s", res.Status, res.Cert, status)
	}
	if res.Result != nil && res.Result.Code != code {
		t.Errorf("exit code %d, want %d", res.Result.Code, code)
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("%v does not match %v", err, is)
	}
	if errors.Is(err, rsyncx.ErrUnreachable) != (status == rsyncx.StatusInit255) {
		t.Errorf("ErrUnreachable disagrees with status %s", status)
	}
	var re *rsyncx.Error
	if !errors.As(err, &re) || re.Status != status || !strings.HasPrefix(err.Error(), "rsyncx: remote init of target ") {
		t.Errorf("not a remote init *Error: %#v", err)
	}
	return res
}

// installFault runs the file install against h and checks the status, that rsync's exit code
// is one of codes (some are racy), and the error's kind.
func installFault(t *testing.T, r *rsyncx.Remote, runDir string, status rsyncx.Status, codes ...int) *rsyncx.InstallResult {
	t.Helper()
	res, err := r.Install(ctxFor(t, 30*time.Second), runDir, "wf", rsyncx.LoadStart)
	if err == nil {
		t.Fatalf("file install succeeded: %+v", res)
	}
	t.Logf("%v", err)
	if res.Status != status {
		t.Errorf("status %s, want %s", res.Status, status)
	}
	if res.Result == nil || !slices.Contains(codes, res.Result.Code) {
		t.Errorf("rsync exit code %v, want one of %v", res.Result, codes)
	}
	if errors.Is(err, rsyncx.ErrUnreachable) != (status == rsyncx.StatusInstall255) {
		t.Errorf("ErrUnreachable disagrees with status %s", status)
	}
	// Exit 255 is final; any other failure is followed by the ssh probe.
	if res.Result != nil && (res.Result.Code == 255) == (res.Probe != nil) {
		t.Errorf("probe %+v after rsync exit %d", res.Probe, res.Result.Code)
	}
	return res
}

func smallRunDir(t *testing.T) string {
	runDir := filepath.Join(t.TempDir(), "wf")
	writeFile(t, filepath.Join(runDir, ".service", "server.key"), "key\n", 0o600)
	writeFile(t, filepath.Join(runDir, "app", "big"), strings.Repeat("x", 200<<10), 0o644)
	return runDir
}

// TestRemoteFaults covers remote-side failures on the shared host; none of them changes it
// for the other tests.
func TestRemoteFaults(t *testing.T) {
	h := testbed.Shared(t)
	installFake(t, h)
	fake := func(target string) *rsyncx.Remote {
		return &rsyncx.Remote{Host: h.Env.Host, Target: target, RemoteCommand: "bin/fake-curvezmq", SSHCommand: faultSSH}
	}

	t.Run("exit 0 without KEYSTART", func(t *testing.T) {
		initFault(t, fake("nokeystart"), rsyncx.StatusInitFailed, 0, rsyncx.ErrBadOutput)
	})
	t.Run("KEYSTART without KEYEND, exit 0", func(t *testing.T) {
		initFault(t, fake("partial"), rsyncx.StatusInitFailed, 0, rsyncx.ErrBadOutput)
	})
	t.Run("KEYSTART without KEYEND, killed", func(t *testing.T) {
		// A remote command killed by a signal makes ssh exit 255.
		initFault(t, fake("partialkill"), rsyncx.StatusInit255, 255, rsyncx.ErrUnreachable)
	})
	t.Run("remote command fails", func(t *testing.T) {
		res := initFault(t, fake("fail"), rsyncx.StatusInitFailed, 3, nil)
		if !strings.Contains(string(res.Result.Stderr), "key creation failed") {
			t.Errorf("stderr %q", res.Result.Stderr)
		}
	})
	t.Run("remote command not found", func(t *testing.T) {
		r := fake("ok")
		r.RemoteCommand = "bin/no-such-program"
		initFault(t, r, rsyncx.StatusInitFailed, 127, nil)
	})
	t.Run("wrong host key", func(t *testing.T) {
		r := fake("ok")
		r.SSHCommand = faultSSH + " -oUserKnownHostsFile=" + h.Env.WrongKnownHosts
		res := initFault(t, r, rsyncx.StatusInit255, 255, rsyncx.ErrUnreachable)
		if !strings.Contains(string(res.Result.Stderr), "Host key verification failed") {
			t.Errorf("stderr %q", res.Result.Stderr)
		}
		r.Target = "hpc"
		installFault(t, r, smallRunDir(t), rsyncx.StatusInstall255, 12, 255)
	})
	t.Run("hostile arguments", func(t *testing.T) {
		for _, r := range []*rsyncx.Remote{
			fake("x;touch pwned"),
			fake("$(touch pwned)"),
			{Host: "-oProxyCommand=touch pwned", Target: "ok", SSHCommand: faultSSH},
		} {
			res, err := r.Init(ctxFor(t, 30*time.Second), "flow/run1", nil)
			if !errors.Is(err, rsyncx.ErrInvalid) || res.Result != nil || res.Status != rsyncx.StatusInitFailed {
				t.Errorf("%+v: %+v, %v", r, res, err)
			}
			xr, err := r.Install(ctxFor(t, 30*time.Second), smallRunDir(t), "wf", rsyncx.LoadStart)
			if !errors.Is(err, rsyncx.ErrInvalid) || xr.Result != nil {
				t.Errorf("%+v: install %+v, %v", r, xr, err)
			}
		}
		res, err := fake("ok").Init(ctxFor(t, 30*time.Second), "../../.ssh", nil)
		if !errors.Is(err, rsyncx.ErrInvalid) || res.Result != nil {
			t.Errorf("hostile workflow id: %+v, %v", res, err)
		}
		if _, err := os.Lstat(h.LocalPath("pwned")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("something ran: %v", err)
		}
	})
	t.Run("remote disk full", func(t *testing.T) {
		// Fill the 64 KiB ~/full first; head fails when it is full.
		h.SSH(ctxFor(t, 30*time.Second), "head -c 100000 /dev/zero >full/filler")
		r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH, BaseDir: "full"}
		installFault(t, r, smallRunDir(t), rsyncx.StatusInstallFailed, 11, 23)
	})
	t.Run("read-only directory", func(t *testing.T) {
		r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH, BaseDir: "ro"}
		installFault(t, r, smallRunDir(t), rsyncx.StatusInstallFailed, 11, 23)
	})
	t.Run("permission denied", func(t *testing.T) {
		r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH, BaseDir: "locked"}
		installFault(t, r, smallRunDir(t), rsyncx.StatusInstallFailed, 11, 23)
	})
	t.Run("run directory parent missing", func(t *testing.T) {
		// File install before remote-init made the run directory's parent.
		r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH, BaseDir: "no-such-dir"}
		installFault(t, r, smallRunDir(t), rsyncx.StatusInstallFailed, 11)
	})
	t.Run("rsync missing on the remote PATH", func(t *testing.T) {
		r := &rsyncx.Remote{Host: h.Env.HostNoRsync, Target: "hpc", SSHCommand: faultSSH}
		res := installFault(t, r, smallRunDir(t), rsyncx.StatusInstallFailed, 12, 127)
		if res.Probe == nil || res.Probe.Code != 0 {
			t.Errorf("probe %+v; the host itself is reachable", res.Probe)
		}
	})
}

// TestRemoteHangs: only our deadline ends a remote command that hangs; nothing of it is left
// locally.
func TestRemoteHangs(t *testing.T) {
	h := testbed.Up(t) // the remote sleep outlives the session until the host goes down
	installFake(t, h)
	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hang", RemoteCommand: "bin/fake-curvezmq", SSHCommand: faultSSH}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	res, err := r.Init(ctx, "flow/run1", nil)
	if !errors.Is(err, rsyncx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrTimeout", err)
	}
	if res.Status != rsyncx.StatusInitFailed || res.Result == nil || string(res.Result.Stdout) != "KEYSTART" {
		t.Errorf("%+v", res)
	}
	waitGroupGone(t, res.Result.PID)
}

// TestHostDown: sshd is gone; remote-init and file install say 255 (retry elsewhere).
func TestHostDown(t *testing.T) {
	h := testbed.Up(t)
	if err := h.Crash(); err != nil {
		t.Fatal(err)
	}
	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH}
	res := initFault(t, r, rsyncx.StatusInit255, 255, rsyncx.ErrUnreachable)
	if !strings.Contains(string(res.Result.Stderr), "Connection refused") {
		t.Errorf("stderr %q", res.Result.Stderr)
	}
	xr := installFault(t, r, smallRunDir(t), rsyncx.StatusInstall255, 12, 255)
	if xr.Probe != nil && xr.Probe.Code != 255 {
		t.Errorf("probe %+v", xr.Probe)
	}
	if err := r.Tidy(ctxFor(t, 30*time.Second), "flow/run1"); !errors.Is(err, rsyncx.ErrUnreachable) {
		t.Errorf("tidy: %v", err)
	}
}

// TestHostUnreachable: packets are dropped; ssh gives up after its ConnectTimeout (1 s here).
func TestHostUnreachable(t *testing.T) {
	h := testbed.Up(t)
	undo, err := h.Blackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: "ssh -oBatchMode=yes -oConnectTimeout=1"}
	res := initFault(t, r, rsyncx.StatusInit255, 255, rsyncx.ErrUnreachable)
	if !strings.Contains(string(res.Result.Stderr), "timed out") {
		t.Errorf("stderr %q", res.Result.Stderr)
	}
}

// waitGroupGone waits (bounded) until no live process is left in process group pgid.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range stats {
			b, err := os.ReadFile(p)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 {
				continue
			}
			f := strings.Fields(string(b[i+1:]))
			if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has %v", pgid, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
