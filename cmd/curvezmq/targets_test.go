package main

// Install targets against real sshd and rsync: each remote host is an sshd in network
// namespaces (internal/testbed); these tests need root and skip without it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/internal/testbed"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

// holdName is the name under which this test binary is a long-lived client (holdMain).
const holdName = "curvezmq-hold"

// holdMain is a client that keeps its connection: "curvezmq-hold RUN_DIR SECONDS" connects
// with RUN_DIR's keys as the client does, sends a ping and prints "reply DATA", then waits
// for the server to close the connection and prints "closed: ERR" (exit 0), or gives up
// after SECONDS (exit 1). On a test bed host it is a remote job's open connection.
func holdMain(args []string) int {
	fail := func(err error) int { fmt.Println("error:", err); return 1 }
	if len(args) != 2 {
		return fail(errors.New("want RUN_DIR SECONDS"))
	}
	secs, err := strconv.Atoi(args[1])
	if err != nil {
		return fail(err)
	}
	srv := keystore.ServiceDir(args[0])
	c, err := keystore.ReadContact(srv)
	if err != nil {
		return fail(err)
	}
	host, port, err := c.HostPort()
	if err != nil {
		return fail(err)
	}
	kp, sk, err := keystore.LoadClientKeys(srv)
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := curve.Dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)), &curve.Config{KeyPair: kp, ServerKey: sk, SocketType: "REQ"})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	if err := conn.Send([]byte{}, []byte(`{"command":"ping"}`)); err != nil {
		return fail(err)
	}
	msg, err := conn.Recv(nil)
	if err != nil || len(msg) != 2 {
		return fail(fmt.Errorf("reply %q: %v", msg, err))
	}
	fmt.Printf("reply %s\n", msg[1])
	_, err = conn.Recv(nil)
	if isTimeout(err) {
		fmt.Println("still open")
		return 1
	}
	fmt.Println("closed:", err)
	return 0
}

var remotePrograms sync.Map // *testbed.Host -> *sync.Once

// remoteProgram puts this test binary on h as bin/curvezmq (and bin/curvezmq-hold), once per
// host; the file is renamed into place, so a copy running there is not disturbed.
func remoteProgram(t testing.TB, h *testbed.Host) {
	t.Helper()
	once, _ := remotePrograms.LoadOrStore(h, &sync.Once{})
	var err error
	once.(*sync.Once).Do(func() {
		var self []byte
		if self, err = os.ReadFile(os.Args[0]); err != nil {
			return
		}
		if err = h.WriteFile("bin/.curvezmq.new", self, 0o755); err != nil {
			return
		}
		if err = os.Rename(h.LocalPath("bin/.curvezmq.new"), h.LocalPath("bin/curvezmq")); err != nil {
			return
		}
		hold := h.LocalPath("bin/" + holdName)
		os.Remove(hold)
		if err = os.Symlink("curvezmq", hold); err == nil {
			err = os.Lchown(hold, h.Env.UID, h.Env.GID)
		}
		if err == nil {
			err = quickExit(h)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// quickExit sets GORACE for the remote user's commands on h, through ~/.bashrc, which bash
// reads for commands run by sshd: the test binary, built with -race, would otherwise wait a
// second before each successful exit. It prints nothing, so rsync is not disturbed.
func quickExit(h *testbed.Host) error {
	return h.WriteFile(".bashrc", []byte("export GORACE=atexit_sleep_ms=0\n"), 0o644)
}

// targets asks a scheduler for its install targets.
func (h *harness) targets(runDir string) map[string]targetView {
	h.t.Helper()
	r := h.run("client", "--run-dir", runDir, "--timeout", "10s", "targets")
	var v map[string]targetView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
		h.t.Fatalf("targets: %v", r)
	}
	return v
}

// finalStatuses are the statuses a target's steps end in.
var finalStatuses = []rsyncx.Status{
	rsyncx.StatusInitFailed, rsyncx.StatusInit255,
	rsyncx.StatusInstallDone, rsyncx.StatusInstallFailed, rsyncx.StatusInstall255,
}

// waitTarget polls "targets" until name's status is final (or, with gone, until name has
// left the list) and returns its view.
func (h *harness) waitTarget(s *schedProc, name string, gone bool) targetView {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v, ok := h.targets(s.runDir)[name]
		switch {
		case gone && !ok:
			return v
		case !gone && !ok:
			h.t.Fatalf("target %s is not listed", name)
		case !gone && slices.Contains(finalStatuses, v.Status):
			return v
		}
		if s.exited() || time.Now().After(deadline) {
			h.t.Fatalf("target %s still %+v (gone %v):\n%s", name, v, gone, s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// request runs "curvezmq client --run-dir DIR ARGS..." and decodes the reply's data into v.
func (h *harness) request(runDir string, v any, args ...string) {
	h.t.Helper()
	r := h.run(append([]string{"client", "--run-dir", runDir, "--timeout", "10s"}, args...)...)
	if r.code != 0 {
		h.t.Fatalf("%q: %v", args, r)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			h.t.Fatalf("%q: %v: %v", args, err, r)
		}
	}
}

// sshCode runs a command on the host and returns its stdout and exit status.
func sshCode(t testing.TB, h *testbed.Host, command string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.SSH(ctx, command)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		t.Logf("%v", err)
		return string(out), ee.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

// holdConn is a long-lived client running on a test bed host.
type holdConn struct {
	cmd   *exec.Cmd
	lines chan string
}

// hold starts bin/curvezmq-hold on h with the remote run directory rel (relative to the
// remote home) and waits for its first reply.
func hold(t testing.TB, h *testbed.Host, rel string) *holdConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, "ssh", "-oBatchMode=yes", "-oConnectTimeout=5", h.Env.Host,
		"bin/"+holdName+" \"$HOME\"/"+rel+" 100")
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &holdConn{cmd: cmd, lines: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID: the ssh this test started
		cmd.Wait()
		cancel()
	})
	if l := c.next(t, 30*time.Second); l != `reply {"data":"pong"}` {
		t.Fatalf("long-lived client: %q", l)
	}
	return c
}

func (c *holdConn) next(t testing.TB, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "(ended)"
		}
		return l
	case <-time.After(d):
		return "(nothing after " + d.String() + ")"
	}
}

// leftovers lists the live local processes, other than skip, whose command line contains
// marker. Processes of the test bed hosts (their own network namespaces) are not local.
func leftovers(marker string, skip ...int) []string {
	var left []string
	self, _ := os.Readlink("/proc/self/ns/net")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if pid == os.Getpid() || slices.Contains(skip, pid) {
			continue
		}
		if ns, err := os.Readlink(d + "/ns/net"); err != nil || ns != self {
			continue
		}
		cmdline, err := os.ReadFile(d + "/cmdline")
		stat, _ := os.ReadFile(d + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		if bytes.Contains(cmdline, []byte(marker)) {
			left = append(left, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}

// noLeftovers waits (bounded) until no process but skip names marker.
func noLeftovers(t testing.TB, marker string, skip ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := leftovers(marker, skip...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left: %q", left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keyFiles lists the files under dir whose name contains "key", and the contact file.
func keyFiles(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && (strings.Contains(d.Name(), "key") || d.Name() == keystore.ContactFileName) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyRemoteService copies the remote .service of workflow id to rel/.service on the host, to
// try its keys later.
func copyRemoteService(t testing.TB, h *testbed.Host, id, rel string) {
	t.Helper()
	src := h.LocalPath("curvezmq-run/" + id + "/.service")
	for _, name := range []string{keystore.ContactFileName, keystore.ClientSecretKeyFile, keystore.ServerPublicKeyFile} {
		if err := h.WriteFile(rel+"/.service/"+name, []byte(readFile(t, filepath.Join(src, name))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTargetsFullCycle runs a scheduler with an install target on a test bed host through a
// whole life: remote-init and file install, a client on the remote host with the remote's
// keys, a long-lived remote connection closed by remove-target, the removed key refused,
// add-target again, reload (a new remote key; the previous one refused), shutdown with
// remote tidy, and a restart whose install log says so.
func TestTargetsFullCycle(t *testing.T) {
	t.Parallel()
	host := testbed.Shared(t)
	remoteProgram(t, host)
	h := newHarness(t)
	const id = "cycle"
	runDir := filepath.Join(t.TempDir(), id)
	remoteRun := "curvezmq-run/" + id
	remoteSrv := host.LocalPath(remoteRun + "/.service")
	args := []string{"--host", host.Env.LocalAddr, "--target", "hpc=" + host.Env.Host, "--remote-command", "bin/curvezmq"}
	s := h.startScheduler(runDir, args...)
	s.waitContact()
	serverKey := readFile(t, filepath.Join(s.srvDir, keystore.ServerPublicKeyFile))

	// remote-init, the key, the file install.
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInstallDone || v.Host != host.Env.Host || v.Error != "" {
		t.Fatalf("hpc: %+v\n%s", v, s.stderr.String())
	}
	for _, name := range []string{"server.key", "client.key_secret", "client_hpc.key", "contact"} {
		if m := mode(t, filepath.Join(remoteSrv, name)); m != 0o600 {
			t.Errorf("remote %s: mode %v", name, m)
		}
	}
	if got := names(tree(t, remoteSrv)); !slices.Equal(got, []string{"client.key_secret", "client_hpc.key", "contact", "server.key"}) {
		t.Errorf("the remote .service holds %q", got)
	}
	if readFile(t, filepath.Join(remoteSrv, "server.key")) != serverKey {
		t.Error("the remote server.key is not the scheduler's")
	}
	clientKey := readFile(t, filepath.Join(remoteSrv, "client_hpc.key"))
	if got := readFile(t, filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName, "client_hpc.key")); got != clientKey {
		t.Error("client_public_keys/client_hpc.key is not the remote's public certificate")
	}
	if log := readFile(t, filepath.Join(runDir, "log", "remote-install", "01-start-hpc.log")); !strings.Contains(log, "\nsend .service/server.key\n") {
		t.Errorf("install log:\n%s", log)
	}

	// A client on the remote host, with the remote's keys, reaches the scheduler.
	if out, code := sshCode(t, host, "bin/curvezmq client --run-dir \"$HOME\"/"+remoteRun+" ping"); code != 0 || out != "\"pong\"\n" {
		t.Fatalf("remote ping: exit %d, %q", code, out)
	}
	live := hold(t, host, remoteRun)
	copyRemoteService(t, host, id, "saved1")

	// remove-target: the open connection is closed, the remote tidied, the key refused.
	var reply map[string]targetView
	h.request(runDir, &reply, "remove-target", "name=hpc")
	if v := reply["hpc"]; !v.Removing {
		t.Errorf("remove-target replied %+v", reply)
	}
	if l := live.next(t, 10*time.Second); !strings.HasPrefix(l, "closed: ") {
		t.Errorf("the removed target's connection: %q", l)
	}
	h.waitTarget(s, "hpc", true)
	if left := keyFiles(t, host.LocalPath(remoteRun)); len(left) != 0 {
		t.Errorf("left on the remote after remove-target: %q", left)
	}
	if _, err := os.Lstat(filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName, "client_hpc.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("client_hpc.key kept: %v", err)
	}
	if _, code := sshCode(t, host, "bin/curvezmq client --run-dir \"$HOME\"/saved1 ping"); code != exitRefused {
		t.Errorf("the removed target's key: exit %d, want %d", code, exitRefused)
	}
	if _, code := sshCode(t, host, "bin/curvezmq client --run-dir \"$HOME\"/"+remoteRun+" ping"); code != exitNotRunning {
		t.Errorf("a client on the tidied remote: exit %d, want %d", code, exitNotRunning)
	}

	// add-target again, then reload: a new remote key pair; the previous one is refused.
	h.request(runDir, &reply, "add-target", "name=hpc", "host="+host.Env.Host)
	if v := reply["hpc"]; v.Status != rsyncx.StatusInitInProgress {
		t.Errorf("add-target replied %+v", reply)
	}
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInstallDone {
		t.Fatalf("hpc after add-target: %+v", v)
	}
	readFile(t, filepath.Join(runDir, "log", "remote-install", "02-start-hpc.log"))
	copyRemoteService(t, host, id, "saved2")
	before := readFile(t, filepath.Join(remoteSrv, "client_hpc.key"))
	live = hold(t, host, remoteRun)
	// A reload usually follows a change to the workflow: rsync has something to send, so it
	// writes an install log (Cylc writes none when rsync prints nothing).
	if err := os.MkdirAll(filepath.Join(runDir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runDir, "app", "changed"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.request(runDir, &reply, "reload")
	if v := reply["hpc"]; v.Status != rsyncx.StatusInitInProgress {
		t.Errorf("reload replied %+v", reply)
	}
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInstallDone {
		t.Fatalf("hpc after reload: %+v", v)
	}
	if l := live.next(t, 10*time.Second); !strings.HasPrefix(l, "closed: ") {
		t.Errorf("the connection of the replaced key: %q", l)
	}
	after := readFile(t, filepath.Join(remoteSrv, "client_hpc.key"))
	if after == before || readFile(t, filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName, "client_hpc.key")) != after {
		t.Error("reload did not replace the remote's key")
	}
	if readFile(t, filepath.Join(s.srvDir, keystore.ServerPublicKeyFile)) != serverKey {
		t.Error("reload changed the server keys")
	}
	if log := readFile(t, filepath.Join(runDir, "log", "remote-install", "03-reload-hpc.log")); !strings.Contains(log, "\nsend app/changed\n") {
		t.Errorf("reload's install log:\n%s", log)
	}
	if _, code := sshCode(t, host, "bin/curvezmq client --run-dir \"$HOME\"/saved2 ping"); code != exitRefused {
		t.Errorf("the key replaced by reload: exit %d, want %d", code, exitRefused)
	}
	if out, code := sshCode(t, host, "bin/curvezmq client --run-dir \"$HOME\"/"+remoteRun+" ping"); code != 0 || out != "\"pong\"\n" {
		t.Errorf("remote ping after reload: exit %d, %q", code, out)
	}

	// Shutdown: remote tidy, then no key anywhere.
	h.request(runDir, nil, "stop")
	if code := s.wait(); code != 0 {
		t.Errorf("scheduler exit %d:\n%s", code, s.stderr.String())
	}
	assertStopped(t, s.srvDir)
	if left := keyFiles(t, host.LocalPath(remoteRun)); len(left) != 0 {
		t.Errorf("left on the remote after shutdown: %q", left)
	}
	logText := readFile(t, filepath.Join(runDir, "log", "scheduler", "log"))
	for _, want := range []string{"remote init done", "remote file install complete", "install target removed", "remote tidy done"} {
		if !strings.Contains(logText, want) {
			t.Errorf("the scheduler log lacks %q", want)
		}
	}
	noLeftovers(t, remoteRun)

	// A restart: new server keys, so remote-init and file install again, labelled so.
	s = h.startScheduler(runDir, args...)
	s.waitContact()
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInstallDone {
		t.Fatalf("hpc after restart: %+v", v)
	}
	readFile(t, filepath.Join(runDir, "log", "remote-install", "04-restart-hpc.log"))
	if readFile(t, filepath.Join(remoteSrv, "server.key")) == serverKey {
		t.Error("the restart did not send the new server key")
	}
	h.request(runDir, nil, "stop")
	if code := s.wait(); code != 0 {
		t.Errorf("restarted scheduler exit %d:\n%s", code, s.stderr.String())
	}
	if left := keyFiles(t, host.LocalPath(remoteRun)); len(left) != 0 {
		t.Errorf("left on the remote after the restarted scheduler: %q", left)
	}
	noLeftovers(t, remoteRun)
	for _, dir := range []string{"saved1", "saved2"} {
		os.RemoveAll(host.LocalPath(dir))
	}
}

// TestTargetsInstallBinary: a host without curvezmq gets the build for its platform from
// --install-binary, and the whole cycle runs with it; without a matching build the target
// fails clearly.
func TestTargetsInstallBinary(t *testing.T) {
	t.Parallel()
	host := testbed.Up(t)
	if err := quickExit(host); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	builds := t.TempDir()
	if err := os.Symlink(self, filepath.Join(builds, rsyncx.BuildName(runtime.GOOS, runtime.GOARCH))); err != nil {
		t.Fatal(err)
	}
	const id = "binary"
	remoteRun := "curvezmq-run/" + id

	// No build for this platform: the target fails, nothing is left running.
	runDir := filepath.Join(t.TempDir(), id)
	s := h.startScheduler(runDir, "--host", host.Env.LocalAddr, "--target", "hpc="+host.Env.Host, "--install-binary", t.TempDir())
	s.waitContact()
	v := h.waitTarget(s, "hpc", false)
	if v.Status != rsyncx.StatusInitFailed || !strings.Contains(v.Error, "no build of curvezmq") ||
		!strings.Contains(v.Error, rsyncx.BuildName(runtime.GOOS, runtime.GOARCH)) {
		t.Errorf("without a build: %+v", v)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}

	// With a login shell: bash's exec finds no curvezmq either.
	s = h.startScheduler(runDir, "--host", host.Env.LocalAddr, "--target", "hpc="+host.Env.Host, "--install-binary", builds, "--login-shell")
	s.waitContact()
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInstallDone {
		t.Fatalf("with a build: %+v\n%s", v, s.stderr.String())
	}
	fi, err := os.Stat(host.LocalPath(rsyncx.BinaryPath))
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Size() == 0 {
		t.Fatalf("remote binary: %v, %v", fi, err)
	}
	if !strings.Contains(s.stderr.String(), "binary installed") {
		t.Errorf("the log does not say so:\n%s", s.stderr.String())
	}
	if out, code := sshCode(t, host, rsyncx.BinaryPath+" client --run-dir \"$HOME\"/"+remoteRun+" ping"); code != 0 || out != "\"pong\"\n" {
		t.Errorf("remote ping with the installed binary: exit %d, %q", code, out)
	}
	h.request(runDir, nil, "stop")
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}
	if left := keyFiles(t, host.LocalPath(remoteRun)); len(left) != 0 {
		t.Errorf("remote tidy with the installed binary left %q", left)
	}
	noLeftovers(t, host.Env.Host)
}

// fakeRemote writes a stand-in remote program to h as bin/NAME: remote-tidy succeeds,
// remote-init runs body.
func fakeRemote(t testing.TB, h *testbed.Host, name, body string) string {
	t.Helper()
	script := "#!/bin/sh\n[ \"$1\" = remote-tidy ] && exit 0\n" + body + "\n"
	if err := h.WriteFile("bin/"+name, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "bin/" + name
}

// symlinkRuns makes the remote's curvezmq-run a link to dir (full, ro, locked), so that
// run directories land there.
func symlinkRuns(t testing.TB, h *testbed.Host, dir string) {
	t.Helper()
	p := h.LocalPath("curvezmq-run")
	if err := os.Symlink(dir, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, h.Env.UID, h.Env.GID); err != nil {
		t.Fatal(err)
	}
}

// faultSSH is the ssh command of the fault tests: a short connect timeout.
const faultSSH = "ssh -oBatchMode=yes -oConnectTimeout=2"

// TestTargetFaults runs a scheduler against each fault of the test bed (remote-testbed.md
// §4): the target ends FAILED or 255 with a clear error in "targets" and the log, the
// scheduler's own keys and its other targets are unaffected, no local process is left, and
// the shutdown is clean.
func TestTargetFaults(t *testing.T) {
	t.Parallel()
	shared := testbed.Shared(t)
	remoteProgram(t, shared)
	secretCert := func(t *testing.T) string {
		dir := t.TempDir()
		_, secret, err := keystore.CreateCertificates(dir, "client", nil)
		if err != nil {
			t.Fatal(err)
		}
		return readFile(t, secret)
	}
	type fault struct {
		name string
		// setup prepares the host (nil: the shared one) and returns the scheduler's extra
		// arguments and the host to target.
		up     bool
		setup  func(t *testing.T, h *testbed.Host) (args []string, target string)
		during func(t *testing.T, h *testbed.Host) // once remote-init is under way
		local  map[string]string                   // files in the local run directory
		want   []rsyncx.Status
		errs   []string // in the error, each
		good   bool     // add a target on the shared host that must succeed
	}
	plain := func(cmd string) func(*testing.T, *testbed.Host) ([]string, string) {
		return func(_ *testing.T, h *testbed.Host) ([]string, string) {
			return []string{"--ssh", faultSSH, "--remote-command", cmd}, h.Env.Host
		}
	}
	fake := func(name, body string) func(*testing.T, *testbed.Host) ([]string, string) {
		return func(t *testing.T, h *testbed.Host) ([]string, string) {
			return []string{"--ssh", faultSSH, "--remote-command", fakeRemote(t, h, name, body)}, h.Env.Host
		}
	}
	big := map[string]string{"app/big": strings.Repeat("x", 200<<10)}
	init255 := []rsyncx.Status{rsyncx.StatusInit255}
	initFailed := []rsyncx.Status{rsyncx.StatusInitFailed}
	installFailed := []rsyncx.Status{rsyncx.StatusInstallFailed}
	faults := []fault{
		{
			name: "sshd down", up: true, good: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				if err := h.Crash(); err != nil {
					t.Fatal(err)
				}
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: init255, errs: []string{"exited with status 255", "Connection refused"},
		},
		{
			name: "host unreachable", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				undo, err := h.Blackhole()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { undo() })
				return []string{"--ssh", "ssh -oBatchMode=yes -oConnectTimeout=1"}, h.Env.Host
			},
			want: init255, errs: []string{"timed out"},
		},
		{
			name: "sshd hangs before the banner", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				if err := h.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { h.Signal(syscall.SIGCONT) })
				return []string{"--ssh", "ssh -oBatchMode=yes -oConnectTimeout=1"}, h.Env.Host
			},
			want: init255, errs: []string{"banner exchange"},
		},
		{
			name: "network drop mid-session", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				return []string{"--ssh", "ssh -oBatchMode=yes -oConnectTimeout=2 -oServerAliveInterval=1 -oServerAliveCountMax=2",
					"--remote-command", fakeRemote(t, h, "fake-hang", "printf KEYSTART; exec sleep 3600")}, h.Env.Host
			},
			during: func(t *testing.T, h *testbed.Host) {
				time.Sleep(time.Second) // the session is up
				undo, err := h.Blackhole()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { undo() })
			},
			want: init255, errs: []string{"exited with status 255"},
		},
		{
			name: "wrong host key",
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				return []string{"--ssh", faultSSH + " -oUserKnownHostsFile=" + h.Env.WrongKnownHosts, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: init255, errs: []string{"Host key verification failed"},
		},
		{
			name: "unknown host",
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				return []string{"--ssh", faultSSH + " -oUserKnownHostsFile=/dev/null -oGlobalKnownHostsFile=/dev/null -oStrictHostKeyChecking=yes",
					"--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: init255, errs: []string{"host key"},
		},
		{
			name:  "remote command fails",
			setup: fake("fake-fail", "echo 'REMOTE INIT FAILED'; echo 'key creation failed: disk on fire' >&2; exit 3"),
			want:  initFailed, errs: []string{"exited with status 3", "disk on fire"},
		},
		{
			name:  "remote command not found",
			setup: plain("bin/no-such-program"),
			want:  initFailed, errs: []string{"exited with status 127", "No such file or directory"},
		},
		{
			name:  "exit 0 without KEYSTART",
			setup: fake("fake-nokeystart", "printf 'REMOTE INIT FAILED\\nUnexpected key directory exists\\n'"),
			want:  initFailed, errs: []string{"no KEYSTART"},
		},
		{
			name:  "output cut short",
			setup: fake("fake-partial", "printf 'KEYSTART#   ****  Generated on'"),
			want:  initFailed, errs: []string{"without KEYEND"},
		},
		{
			name:  "output cut short by a crash",
			setup: fake("fake-partialkill", "printf 'KEYSTART#   ****  Generated on'; kill -9 $$"),
			want:  init255, errs: []string{"exited with status 255"},
		},
		{
			name: "a secret key in the reply",
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				if err := h.WriteFile("secret-cert.txt", []byte(secretCert(t)), 0o600); err != nil {
					t.Fatal(err)
				}
				return fake("fake-secret", `printf KEYSTART; cat "$HOME/secret-cert.txt"; printf 'KEYENDREMOTE INIT DONE\n'`)(t, h)
			},
			want: initFailed, errs: []string{"carries a secret key", "nothing written"},
		},
		{
			name: "remote command hangs", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				return []string{"--ssh", faultSSH, "--init-timeout", "2s",
					"--remote-command", fakeRemote(t, h, "fake-hang", "printf KEYSTART; exec sleep 3600")}, h.Env.Host
			},
			want: initFailed, errs: []string{"timed out"},
		},
		{
			name: "remote disk full", up: true, local: big,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				remoteProgram(t, h)
				symlinkRuns(t, h, "full")
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: installFailed, errs: []string{"rsync exited with status"},
		},
		{
			name: "read-only remote directory", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				remoteProgram(t, h)
				symlinkRuns(t, h, "ro")
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: initFailed, errs: []string{"exited with status 3", "read-only file system"},
		},
		{
			name: "permission denied", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				remoteProgram(t, h)
				symlinkRuns(t, h, "locked")
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: initFailed, errs: []string{"exited with status 3", "permission denied"},
		},
		{
			name: "rsync missing on the remote PATH",
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.HostNoRsync
			},
			want: installFailed, errs: []string{"rsync exited with status"},
		},
		{
			name: "remote shell not clean", up: true,
			setup: func(t *testing.T, h *testbed.Host) ([]string, string) {
				remoteProgram(t, h)
				if err := h.WriteFile(".bashrc", []byte("echo hello from .bashrc\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"--ssh", faultSSH, "--remote-command", "bin/curvezmq"}, h.Env.Host
			},
			want: installFailed, errs: []string{"rsync exited with status"},
		},
	}
	runFault := func(t *testing.T, id string, f fault) {
		h := newHarness(t)
		host := shared
		if f.up {
			host = testbed.Up(t)
		}
		args, target := f.setup(t, host)
		runDir := filepath.Join(t.TempDir(), id)
		for name, content := range f.local {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(runDir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(runDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, "--host", host.Env.LocalAddr, "--target", "hpc="+target)
		if f.good {
			args = append(args, "--target", "good="+shared.Env.Host)
		}
		s := h.startScheduler(runDir, args...)
		s.waitContact()
		serverKey := readFile(t, filepath.Join(s.srvDir, keystore.ServerPublicKeyFile))
		if f.during != nil {
			f.during(t, host)
		}

		v := h.waitTarget(s, "hpc", false)
		if !slices.Contains(f.want, v.Status) {
			t.Errorf("status %s, want one of %v (error %q)", v.Status, f.want, v.Error)
		}
		for _, e := range f.errs {
			if !strings.Contains(strings.ToLower(v.Error), strings.ToLower(e)) {
				t.Errorf("error %q lacks %q", v.Error, e)
			}
		}
		if f.good {
			if g := h.waitTarget(s, "good", false); g.Status != rsyncx.StatusInstallDone {
				t.Errorf("the good target: %+v", g)
			}
		}
		// The scheduler's keys are intact and it still answers; nothing runs for the target.
		if readFile(t, filepath.Join(s.srvDir, keystore.ServerPublicKeyFile)) != serverKey {
			t.Error("server.key changed")
		}
		for _, name := range serviceKeys {
			if _, err := os.Stat(filepath.Join(s.srvDir, name)); err != nil {
				t.Errorf("local key lost: %v", err)
			}
		}
		_, err := os.Lstat(filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName, "client_hpc.key"))
		if hasKey := err == nil; hasKey != (v.Status == rsyncx.StatusInstallFailed) {
			t.Errorf("client_hpc.key present %v with status %s", hasKey, v.Status)
		}
		expect(t, h.run("client", "--run-dir", runDir, "ping"), 0)
		noLeftovers(t, id, s.pid())
		logText := readFile(t, filepath.Join(runDir, "log", "scheduler", "log"))
		if !strings.Contains(logText, "level=ERROR msg=\"remote") || !strings.Contains(logText, "target=hpc") {
			t.Errorf("the scheduler log does not report the failure:\n%s", logText)
		}

		h.request(runDir, nil, "stop")
		if code := s.wait(); code != 0 {
			t.Errorf("exit %d:\n%s", code, s.stderr.String())
		}
		assertStopped(t, s.srvDir)
		noLeftovers(t, id)
		t.Logf("%s: %s", v.Status, v.Error)
	}
	// All at once, beyond -parallel: the cases mostly wait for timeouts. t.Run may be called
	// from several goroutines; each case's failures end only its own subtest.
	var wg sync.WaitGroup
	for i, f := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(f.name, func(t *testing.T) { runFault(t, fmt.Sprintf("fault%02dx", i), f) })
		}()
	}
	wg.Wait()
}

// TestRemoveTargetInProgress: remove-target and reload while remote-init runs cancel it at
// once: its ssh is killed, no key is installed, and the target leaves without a remote tidy
// (its remote-init never succeeded).
func TestRemoveTargetInProgress(t *testing.T) {
	t.Parallel()
	host := testbed.Shared(t)
	h := newHarness(t)
	slow := fakeRemote(t, host, "fake-slow", "exec sleep 20")
	const id = "inprogress"
	runDir := filepath.Join(t.TempDir(), id)
	s := h.startScheduler(runDir, "--ssh", faultSSH, "--remote-command", slow, "--target", "hpc="+host.Env.Host)
	s.waitContact()
	waitRunning := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(leftovers(id, s.pid())) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("remote-init's ssh never started")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRunning()
	var reply map[string]targetView
	h.request(runDir, &reply, "reload")
	if v := reply["hpc"]; v.Status != rsyncx.StatusInitInProgress {
		t.Errorf("reload replied %+v", reply)
	}
	waitRunning()
	start := time.Now()
	h.request(runDir, &reply, "remove-target", "name=hpc")
	h.waitTarget(s, "hpc", true)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the removal took %v", d)
	}
	noLeftovers(t, id, s.pid())
	if _, err := os.Lstat(filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName, "client_hpc.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("client_hpc.key: %v", err)
	}
	if strings.Contains(s.stderr.String(), "remote tidy") {
		t.Errorf("a target whose remote-init never succeeded was tidied:\n%s", s.stderr.String())
	}
	h.request(runDir, nil, "stop")
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}
}
