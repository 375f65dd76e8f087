package main

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/keystore"
)

// copyFiles copies the named files from one .service directory to another (created 0700).
func copyFiles(t testing.TB, from, to string, files ...string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// keygenAs writes a new key pair with "curvezmq keygen" and installs it in srvDir as
// client.key_secret (as NAME == "client") or server.key (NAME == "server").
func keygenAs(t testing.TB, h *harness, srvDir, name string) {
	t.Helper()
	dir := t.TempDir()
	if r := h.run("keygen", "--dir", dir, name); r.code != 0 {
		t.Fatalf("%v", r)
	}
	file := name + ".key"
	if name == "client" {
		file = name + ".key_secret"
	}
	copyFiles(t, dir, srvDir, file)
}

// TestClientFailures: a live scheduler and clients that cannot use it, each with its exit
// code and message: a key the scheduler does not know (3), a wrong server key (3), missing
// files (4).
func TestClientFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "live")
	s := h.startScheduler(runDir)
	s.waitContact()
	other := func() (runDir, srvDir string) {
		runDir = filepath.Join(t.TempDir(), "live")
		return runDir, keystore.ServiceDir(runDir)
	}

	// A client whose key is not in client_public_keys: refused with ERROR 400.
	intruder, intruderSrv := other()
	copyFiles(t, s.srvDir, intruderSrv, keystore.ContactFileName, keystore.ServerPublicKeyFile)
	keygenAs(t, h, intruderSrv, "client")
	r := h.run("client", "--run-dir", intruder, "ping")
	expect(t, r, exitRefused, "refused by the server (ERROR 400): this client's key is not in the scheduler's client_public_keys")
	if r.took > 5*time.Second {
		t.Errorf("a refusal took %v", r.took)
	}

	// A client with the wrong server key: the server hangs up after HELLO.
	wrong, wrongSrv := other()
	copyFiles(t, s.srvDir, wrongSrv, keystore.ContactFileName, keystore.ClientSecretKeyFile)
	keygenAs(t, h, wrongSrv, "server")
	expect(t, h.run("client", "--run-dir", wrong, "ping"), exitRefused,
		"the server closed the connection right after HELLO: wrong server key?")

	// Missing files, with Cylc's messages.
	noContact, noContactSrv := other()
	copyFiles(t, s.srvDir, noContactSrv, keystore.ClientSecretKeyFile, keystore.ServerPublicKeyFile)
	expect(t, h.run("client", "--run-dir", noContact, "ping"), exitNotRunning, "curvezmq: client: live is not running\n")
	expect(t, h.run("client", "--run-dir", filepath.Join(t.TempDir(), "nothing"), "ping"), exitNotRunning, "nothing is not running")
	noClientKey, noClientKeySrv := other()
	copyFiles(t, s.srvDir, noClientKeySrv, keystore.ContactFileName, keystore.ServerPublicKeyFile)
	expect(t, h.run("client", "--run-dir", noClientKey, "ping"), exitNotRunning, "curvezmq: client: "+keystore.MsgNoClientKey+"\n")
	noServerKey, noServerKeySrv := other()
	copyFiles(t, s.srvDir, noServerKeySrv, keystore.ContactFileName, keystore.ClientSecretKeyFile)
	expect(t, h.run("client", "--run-dir", noServerKey, "ping"), exitNotRunning, "curvezmq: client: "+keystore.MsgNoServerKey+"\n")

	// The scheduler saw and counted the refusal.
	r = h.run("client", "--run-dir", runDir, "auth")
	if r.code != 0 || !strings.Contains(r.stdout, `"unknown_key": 1`) || !strings.Contains(r.stdout, `"400": 1`) {
		t.Errorf("auth after the refusal: %v", r)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	logText, _ := os.ReadFile(filepath.Join(runDir, "log", "scheduler", "log"))
	if !strings.Contains(string(logText), "DENIED (CURVE)") || !strings.Contains(string(logText), "HANDSHAKE_FAILED_AUTH 400") {
		t.Errorf("the log does not show the refusal:\n%s", logText)
	}
}

// silentServer accepts TCP connections and never answers, as a stopped (SIGSTOP) or
// overloaded scheduler would. It returns its port.
func silentServer(t testing.TB) int {
	port, _ := silentServerAccepts(t)
	return port
}

// silentServerAccepts is silentServer that also reports each connection it accepts.
func silentServerAccepts(t testing.TB) (int, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// fakeRunDir makes a run directory whose contact file points at port and names the
// process pid with command cmd, with keys that a client can load.
func fakeRunDir(t testing.TB, id string, port, pid int, cmd string) string {
	t.Helper()
	runDir := filepath.Join(t.TempDir(), id)
	srvDir := keystore.ServiceDir(runDir)
	kp, err := keystore.CreateServerKeys(srvDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp.Wipe()
	if err := keystore.WriteContact(srvDir, keystore.Contact{
		keystore.ContactHost: "127.0.0.1", keystore.ContactPort: strconv.Itoa(port), keystore.ContactID: id,
		keystore.ContactPID: strconv.Itoa(pid), keystore.ContactCommand: cmd,
	}); err != nil {
		t.Fatal(err)
	}
	return runDir
}

// TestClientTimeout: a scheduler that is alive but does not answer gives exit 2 once
// --timeout has passed, whatever form it takes, and its contact file stays.
func TestClientTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	self, err := keystore.ProcessCommand(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	runDir := fakeRunDir(t, "hung", silentServer(t), os.Getpid(), self)
	for _, timeout := range []string{"300ms", "0.3"} {
		r := h.run("client", "--run-dir", runDir, "--timeout", timeout, "ping")
		expect(t, r, exitTimeout, "hung 127.0.0.1:", "Connection timed out (300 ms)", "Timeout waiting for server response.")
		if r.took < 300*time.Millisecond || r.took > 5*time.Second {
			t.Errorf("--timeout %s: the client took %v", timeout, r.took)
		}
	}
	if _, err := os.Stat(filepath.Join(keystore.ServiceDir(runDir), keystore.ContactFileName)); err != nil {
		t.Errorf("the live scheduler's contact file: %v", err)
	}
}

// TestClientDeadScheduler: a scheduler whose process is gone, with its port still taken by
// something silent: exit 4 after the timeout, and the stale contact file is removed, as
// Cylc's client does.
func TestClientDeadScheduler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := fakeRunDir(t, "dead", silentServer(t), deadPID(t), "curvezmq scheduler")
	r := h.run("client", "--run-dir", runDir, "--timeout", "200ms", "ping")
	expect(t, r, exitNotRunning, "Connection timed out (200 ms)",
		"Removed contact file for dead (workflow no longer running).", "dead is not running")
	if _, err := os.Lstat(filepath.Join(keystore.ServiceDir(runDir), keystore.ContactFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale contact file kept: %v", err)
	}
}

// TestClientMoved: when the contact file changes while the client waits, the client says
// where the workflow went (Cylc's timeout handler).
func TestClientMoved(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	self, err := keystore.ProcessCommand(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The contact file names a port where a silent server first was; a second silent server
	// takes over in the contact file before the client gives up.
	first, accepted := silentServerAccepts(t)
	runDir := fakeRunDir(t, "moving", first, os.Getpid(), self)
	srvDir := keystore.ServiceDir(runDir)
	second := silentServer(t)
	done := make(chan result, 1)
	go func() { done <- h.run("client", "--run-dir", runDir, "--timeout", "2s", "ping") }()
	// Once the client is connected (it has read the contact file), the workflow moves.
	select {
	case <-accepted:
	case <-time.After(commandWait):
		t.Fatal("the client did not connect")
	}
	c, err := keystore.ReadContact(srvDir)
	if err != nil {
		t.Fatal(err)
	}
	c[keystore.ContactPort] = strconv.Itoa(second)
	if err := keystore.WriteContact(srvDir, c); err != nil {
		t.Fatal(err)
	}
	r := <-done
	expect(t, r, exitTimeout, "The workflow is no longer running at 127.0.0.1:"+strconv.Itoa(first),
		"It has moved to 127.0.0.1:"+strconv.Itoa(second))
}

// TestClientUsage: command line errors exit 1 before anything is read or sent.
func TestClientUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		msg  string
	}{
		{nil, []string{"client", "ping"}, "which workflow? Give --run-dir or --id, or set CURVEZMQ_RUN_DIR"},
		{nil, []string{"client", "--run-dir", dir, "--id", "x", "ping"}, "give --run-dir or --id, not both"},
		{nil, []string{"client", "--id", "../x", "ping"}, `has a ".." component`},
		{nil, []string{"client", "--run-dir", dir}, "no COMMAND"},
		{nil, []string{"client", "--run-dir", dir, "--timeout", "0", "ping"}, "must be positive"},
		{nil, []string{"client", "--run-dir", dir, "--timeout", "-1s", "ping"}, "must be positive"},
		{nil, []string{"client", "--run-dir", dir, "--timeout", "soon", "ping"}, "want a duration"},
		{nil, []string{"client", "--run-dir", dir, "ping", "novalue"}, `argument "novalue": want NAME=VALUE`},
		{nil, []string{"client", "--run-dir", dir, "ping", "=v"}, "want NAME=VALUE"},
		{nil, []string{"client", "--run-dir", dir, "ping", "a=1", "a=2"}, `argument "a" given twice`},
		{nil, []string{"client", "--run-dir", dir, "--raw", `{"command":"ping"}`, "ping"}, "--raw is the whole request"},
		{nil, []string{"client", "--run-dir", dir, "--raw", `{"command":`}, "--raw: not valid JSON"},
		{nil, []string{"client", "--id", "x", "ping"}, ""}, // HOME is set: not a usage error
		{[]string{"HOME="}, []string{"client", "--id", "x", "ping"}, "HOME is not set"},
		{nil, []string{"client", "ping", "--run-dir", dir}, "which workflow?"}, // flags come first
	} {
		r := h.runEnv(c.env, c.args...)
		if c.msg == "" {
			expect(t, r, exitNotRunning, "x is not running")
			continue
		}
		expect(t, r, 1, c.msg, "usage: curvezmq client")
	}
	if r := h.run("client", "--help"); r.code != 0 || r.stdout != clientUsage {
		t.Errorf("%v", r)
	}
}
