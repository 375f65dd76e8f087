package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
)

// serviceKeys are the key files a running scheduler keeps in .service.
var serviceKeys = []string{
	keystore.ClientSecretKeyFile,
	filepath.Join(keystore.ClientPublicKeysDirName, "client_localhost.key"),
	keystore.ServerPublicKeyFile,
	keystore.ServerSecretKeyFile,
}

// serverSecretZ85 returns the server's secret key as Z85 text, to check that no log shows it.
func serverSecretZ85(t testing.TB, srvDir string) string {
	t.Helper()
	c, err := keystore.ReadCertificate(filepath.Join(srvDir, keystore.ServerSecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Wipe()
	return c.Secret.UnsafeZ85()
}

// assertStopped checks that a scheduler left no key and no contact file behind.
func assertStopped(t testing.TB, srvDir string) {
	t.Helper()
	if left := names(tree(t, srvDir)); len(left) != 0 {
		t.Errorf("left in .service after shutdown: %q", left)
	}
	if _, err := os.Lstat(filepath.Join(srvDir, keystore.ClientPublicKeysDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("client_public_keys left after shutdown: %v", err)
	}
}

// TestSchedulerAndClient runs a scheduler through its whole life: start-up files and
// contact file, each request through the client (by run directory, by id and through
// $CURVEZMQ_RUN_DIR), a stop request, and the cleanup.
func TestSchedulerAndClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The default run directory, with a nested id.
	runDir := filepath.Join(h.home, "curvezmq-run", "flow", "run1")
	s := h.startSchedulerArgs(runDir, "scheduler", "--id", "flow/run1", "--ports", "0-0")
	c := s.waitContact()

	// The contact file: every field Cylc writes, with this scheduler's values.
	wantKeys := []string{
		keystore.ContactAPI, keystore.ContactVersion, keystore.ContactCommand, keystore.ContactHost,
		keystore.ContactID, keystore.ContactOwner, keystore.ContactPID, keystore.ContactPort,
		keystore.ContactPublishPort, keystore.ContactRunDir, keystore.ContactUUID,
		keystore.ContactCylcPath, keystore.ContactSSHCommand, keystore.ContactLoginShell,
	}
	if got := names(map[string]string(c)); !slices.Equal(got, wantKeys) {
		t.Errorf("contact fields %q, want %q", got, wantKeys)
	}
	cmdline, err := keystore.ProcessCommand(s.pid())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		keystore.ContactAPI:        "5",
		keystore.ContactVersion:    version,
		keystore.ContactCommand:    cmdline,
		keystore.ContactID:         "flow/run1",
		keystore.ContactRunDir:     runDir,
		keystore.ContactCylcPath:   "None",
		keystore.ContactSSHCommand: "ssh -oBatchMode=yes -oConnectTimeout=10",
		keystore.ContactLoginShell: "True",
	} {
		if c[k] != want {
			t.Errorf("%s=%q, want %q", k, c[k], want)
		}
	}
	port, _ := strconv.Atoi(c[keystore.ContactPort])
	pubPort, _ := strconv.Atoi(c[keystore.ContactPublishPort])
	if port <= 0 || pubPort <= 0 || port == pubPort {
		t.Errorf("ports %d and %d", port, pubPort)
	}
	if len(c[keystore.ContactUUID]) != 36 || c[keystore.ContactUUID][14] != '4' {
		t.Errorf("UUID %q is not a version 4 UUID", c[keystore.ContactUUID])
	}
	if c[keystore.ContactHost] == "" || c[keystore.ContactOwner] == "" {
		t.Errorf("host %q, owner %q", c[keystore.ContactHost], c[keystore.ContactOwner])
	}

	// The keys, as Cylc makes them, all 0600.
	for _, name := range append(slices.Clone(serviceKeys), keystore.ContactFileName) {
		if m := mode(t, filepath.Join(s.srvDir, name)); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, m)
		}
	}
	secret := serverSecretZ85(t, s.srvDir)

	// Requests, finding the workflow three ways.
	for _, how := range [][]string{{"--run-dir", runDir}, {"--id", "flow/run1"}, nil} {
		var env []string
		if how == nil {
			env = []string{runDirEnv + "=" + runDir}
		}
		r := h.runEnv(env, append(append([]string{"client"}, how...), "ping")...)
		if r.code != 0 || r.stdout != "\"pong\"\n" || r.stderr != "" {
			t.Errorf("ping: %v", r)
		}
	}
	// --id wins over the environment, which names another run directory.
	expect(t, h.runEnv([]string{runDirEnv + "=" + t.TempDir()}, "client", "--id", "flow/run1", "ping"), 0)
	if r := h.run("client", "--run-dir", runDir, "ping", "a=1", "b=x=y"); r.code != 0 || r.stdout != "\"pong\"\n" {
		t.Errorf("ping with arguments: %v", r)
	}
	r := h.run("client", "--run-dir", runDir, "--timeout", "10", "auth")
	var stats struct {
		Allowed    uint64 `json:"allowed"`
		Keys       int    `json:"keys"`
		Generation uint64 `json:"generation"`
		Handshakes struct {
			Succeeded uint64 `json:"succeeded"`
		} `json:"handshakes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &stats); r.code != 0 || err != nil {
		t.Fatalf("auth: %v (%v)", err, r)
	}
	if stats.Keys != 1 || stats.Generation == 0 || stats.Allowed < 5 || stats.Handshakes.Succeeded < 5 {
		t.Errorf("auth stats %+v\n%s", stats, r.stdout)
	}
	expect(t, h.run("client", "--run-dir", runDir, "frobnicate"), 1,
		`curvezmq: client: flow/run1: unknown command "frobnicate" (known: add-target, auth, ping, reload, remove-target, stop, targets)`)
	expect(t, h.run("client", "--run-dir", runDir, "--raw", `["ping"]`), 1, "malformed request: not a JSON object")
	expect(t, h.run("client", "--run-dir", runDir, "--raw", `{"command":"ping","args":[]}`), 1, `"args" must be an object`)
	expect(t, h.run("client", "--run-dir", runDir, "--raw", `{"command":7}`), 1, `malformed request: "command" is a JSON number`)
	if r := h.run("client", "--run-dir", runDir, "--raw", `{"command":"ping"}`); r.code != 0 || r.stdout != "\"pong\"\n" {
		t.Errorf("raw ping: %v", r)
	}

	// Stop: the reply comes first, then the scheduler cleans up and exits 0.
	if r := h.run("client", "--run-dir", runDir, "stop"); r.code != 0 || r.stdout != "\"stopping\"\n" {
		t.Errorf("stop: %v", r)
	}
	if code := s.wait(); code != 0 {
		t.Errorf("scheduler exit %d:\n%s", code, s.stderr.String())
	}
	assertStopped(t, s.srvDir)
	expect(t, h.run("client", "--run-dir", runDir, "ping"), exitNotRunning, "curvezmq: client: run1 is not running")

	// The logs: stderr and log/scheduler/log, which also has the debug lines; no secret.
	logText, err := os.ReadFile(filepath.Join(runDir, "log", "scheduler", "log"))
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(runDir, "log", "scheduler", "log")); m != 0o600 {
		t.Errorf("log mode %v", m)
	}
	for _, want := range []string{"scheduler started", "ALLOWED (CURVE)", "HANDSHAKE_SUCCEEDED", "stop requested", "scheduler stopped"} {
		if !strings.Contains(string(logText), want) {
			t.Errorf("the log lacks %q:\n%s", want, logText)
		}
	}
	stderr := s.stderr.String()
	if !strings.Contains(stderr, "scheduler started") || strings.Contains(stderr, "ALLOWED (CURVE)") {
		t.Errorf("stderr should have INFO lines only:\n%s", stderr)
	}
	if strings.Contains(string(logText), secret) || strings.Contains(stderr, secret) {
		t.Error("the server's secret key is in a log")
	}
}

// TestSchedulerSignals: SIGTERM and SIGINT shut the scheduler down in order: the shutdown
// event, then no key and no contact file, exit 0.
func TestSchedulerSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		h := newHarness(t)
		runDir := filepath.Join(t.TempDir(), "sig")
		s := h.startScheduler(runDir)
		c := s.waitContact()
		events := subscribe(t, s.srvDir, c)
		s.signal(sig)
		if code := s.wait(); code != 0 {
			t.Errorf("%v: exit %d:\n%s", sig, code, s.stderr.String())
		}
		assertStopped(t, s.srvDir)
		want := "signal " + map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[sig]
		if got := events.shutdown(t); got != want {
			t.Errorf("shutdown event %q, want %q", got, want)
		}
		if !strings.Contains(s.stderr.String(), `reason="`+want+`"`) {
			t.Errorf("stderr:\n%s", s.stderr.String())
		}
	}
}

// TestSchedulerSecondSignal: a signal during the shutdown does not interrupt the cleanup.
func TestSchedulerSecondSignal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.startScheduler(filepath.Join(t.TempDir(), "twice"))
	s.waitContact()
	s.signal(syscall.SIGTERM)
	deadline := time.Now().Add(stopWait)
	for !strings.Contains(s.stderr.String(), "shutting down") && !s.exited() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s.cmd.Process.Signal(syscall.SIGINT) // an error only says that it has exited
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}
	assertStopped(t, s.srvDir)
	if !strings.Contains(s.stderr.String(), "already shutting down; finishing the cleanup") {
		t.Logf("the second signal came after the cleanup:\n%s", s.stderr.String())
	}
}

// events is a zmq4 SUB socket over curve:// on a scheduler's PUB port.
type events struct {
	sub  zmq4.Socket
	msgs chan zmq4.Msg
}

// subscribe connects a SUB socket with the client's keys and returns once it receives
// events (it pings the scheduler until a "command" event arrives).
func subscribe(t testing.TB, srvDir string, c keystore.Contact) *events {
	t.Helper()
	kp, srv, err := keystore.LoadClientKeys(srvDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := curve.WithConfig(context.Background(), &curve.Config{KeyPair: kp, ServerKey: srv})
	e := &events{sub: zmq4.NewSub(ctx), msgs: make(chan zmq4.Msg, 16)}
	t.Cleanup(func() { e.sub.Close() })
	if err := e.sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.sub.Dial("curve://127.0.0.1:" + c[keystore.ContactPublishPort]); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			msg, err := e.sub.Recv()
			if err != nil {
				close(e.msgs)
				return
			}
			e.msgs <- msg
		}
	}()
	deadline := time.Now().Add(startWait)
	for time.Now().Before(deadline) {
		if _, err := sendRequest(t, srvDir, c, `{"command":"ping"}`); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-e.msgs:
			if len(m.Frames) == 2 && string(m.Frames[0]) == "command" {
				return e
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("no event on the PUB socket within %v", startWait)
	return nil
}

// shutdown waits for the shutdown event and returns its payload.
func (e *events) shutdown(t testing.TB) string {
	t.Helper()
	timeout := time.After(stopWait)
	for {
		select {
		case m, ok := <-e.msgs:
			if !ok {
				t.Fatal("the subscription ended without a shutdown event")
			}
			if len(m.Frames) == 2 && string(m.Frames[0]) == "shutdown" {
				return string(m.Frames[1])
			}
		case <-timeout:
			t.Fatalf("no shutdown event within %v", stopWait)
		}
	}
}

// sendRequest sends one raw request frame as a REQ socket would, with the keys of srvDir, and
// returns the reply frame.
func sendRequest(t testing.TB, srvDir string, c keystore.Contact, frames ...string) (string, error) {
	t.Helper()
	kp, srv, err := keystore.LoadClientKeys(srvDir)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := curve.Dial(ctx, "tcp", "127.0.0.1:"+c[keystore.ContactPort], &curve.Config{KeyPair: kp, ServerKey: srv, SocketType: "REQ"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	parts := [][]byte{{}}
	for _, f := range frames {
		parts = append(parts, []byte(f))
	}
	if err := conn.Send(parts...); err != nil {
		return "", err
	}
	msg, err := conn.Recv(nil)
	if err != nil {
		return "", err
	}
	if len(msg) != 2 || len(msg[0]) != 0 {
		return "", errors.New("reply is not the delimiter and one frame")
	}
	return string(msg[1]), nil
}

// TestSchedulerRequests: every request gets a reply in Cylc's shape, malformed ones
// included, and the scheduler carries on.
func TestSchedulerRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.startScheduler(filepath.Join(t.TempDir(), "req"))
	c := s.waitContact()
	for _, tc := range []struct {
		frames []string
		reply  string
	}{
		{[]string{`{"command":"ping"}`}, `{"data":"pong"}`},
		{[]string{`{"command":"ping","args":{"x":"1"},"meta":{"prog":"test"}}`}, `{"data":"pong"}`},
		{[]string{`{"command":"ping","args":null}`}, `{"data":"pong"}`},
		{[]string{`not json`}, `{"error":{"message":"malformed request: not JSON"}}`},
		{[]string{`{"command":"ping"`}, `{"error":{"message":"malformed request: not JSON"}}`},
		{[]string{`"ping"`}, `{"error":{"message":"malformed request: not a JSON object"}}`},
		{[]string{`{}`}, `{"error":{"message":"malformed request: no \"command\""}}`},
		{[]string{`{"command":["ping"]}`}, `{"error":{"message":"malformed request: \"command\" is a JSON array"}}`},
		{[]string{`{"command":"ping","args":"x"}`}, `{"error":{"message":"malformed request: \"args\" must be an object"}}`},
		{[]string{`{"command":"ping"}`, `{}`}, `{"error":{"message":"malformed request: want one frame of JSON, got 2 frames"}}`},
		{[]string{`{"command":"Ping"}`}, `{"error":{"message":"unknown command \"Ping\" (known: add-target, auth, ping, reload, remove-target, stop, targets)"}}`},
		{[]string{`{"command":"` + strings.Repeat("é", 40) + `"}`}, `{"error":{"message":"unknown command \"` + strings.Repeat("é", 32) + `...\" (known: add-target, auth, ping, reload, remove-target, stop, targets)"}}`},
	} {
		got, err := sendRequest(t, s.srvDir, c, tc.frames...)
		if err != nil || got != tc.reply {
			t.Errorf("%q: reply %s (%v), want %s", tc.frames, got, err, tc.reply)
		}
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestSchedulerRepliesToEachClient: many clients asking at once each get the answer to
// their own request (zmq4's REP answers the connection of its latest Recv).
func TestSchedulerRepliesToEachClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.startScheduler(filepath.Join(t.TempDir(), "many"))
	c := s.waitContact()
	const n = 40
	errs := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			me := fmt.Sprintf("who-%d", i)
			got, err := sendRequest(t, s.srvDir, c, fmt.Sprintf(`{"command":%q}`, me))
			switch {
			case err != nil:
				errs <- fmt.Sprintf("%s: no reply: %v", me, err)
			case !strings.Contains(got, `unknown command \"`+me+`\"`):
				errs <- fmt.Sprintf("%s got %.60s", me, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestSchedulerOversizedRequest: a request of more than 1 MiB, however it is split into
// frames, costs its sender the connection, and the scheduler goes on answering others.
func TestSchedulerOversizedRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.startScheduler(filepath.Join(t.TempDir(), "big"))
	c := s.waitContact()
	half := strings.Repeat(" ", 600<<10)
	got, err := sendRequest(t, s.srvDir, c, half, half)
	if err == nil || isTimeout(err) {
		t.Errorf("a 1.2 MiB request: reply %.80q, %v; want the connection closed", got, err)
	}
	if got, err := sendRequest(t, s.srvDir, c, `{"command":"ping"}`); got != `{"data":"pong"}` {
		t.Errorf("ping after an oversized request: %q, %v", got, err)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestSecondSchedulerRefused: a second scheduler on a run directory in use exits 4 and
// changes nothing; the first one carries on.
func TestSecondSchedulerRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "busy")
	first := h.startScheduler(runDir)
	first.waitContact()
	before := tree(t, first.srvDir)
	if len(before) != 5 {
		t.Fatalf("files before: %q", names(before))
	}

	second := h.startScheduler(runDir)
	if code := second.wait(); code != exitNotRunning {
		t.Errorf("second scheduler: exit %d, want 4:\n%s", code, second.stderr.String())
	}
	if !strings.Contains(second.stderr.String(), "another scheduler is running on this run directory; nothing was changed") ||
		!strings.Contains(second.stderr.String(), "pid="+strconv.Itoa(first.pid())) {
		t.Errorf("second scheduler's stderr:\n%s", second.stderr.String())
	}
	after := tree(t, first.srvDir)
	if !equalTrees(before, after) {
		t.Errorf("the first scheduler's files changed:\nbefore %q\nafter  %q", names(before), names(after))
	}
	logText, _ := os.ReadFile(filepath.Join(runDir, "log", "scheduler", "log"))
	if strings.Contains(string(logText), "another scheduler") || strings.Contains(string(logText), "pid="+strconv.Itoa(second.pid())) {
		t.Errorf("the second scheduler wrote to the first one's log:\n%s", logText)
	}
	if r := h.run("client", "--run-dir", runDir, "ping"); r.code != 0 {
		t.Errorf("the first scheduler no longer answers: %v", r)
	}
	first.signal(syscall.SIGTERM)
	if code := first.wait(); code != 0 {
		t.Errorf("first scheduler: exit %d", code)
	}
	assertStopped(t, first.srvDir)
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSchedulerKilled: after SIGKILL the keys and the contact file stay; a client says the
// workflow is not running (exit 4) at once, without hanging, and removes the stale contact
// file as Cylc's does; a new scheduler then starts on the run directory with new keys.
func TestSchedulerKilled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "killed")
	s := h.startScheduler(runDir)
	s.waitContact()
	oldKey, err := os.ReadFile(filepath.Join(s.srvDir, keystore.ServerPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGKILL)
	s.wait()

	r := h.run("client", "--run-dir", runDir, "--timeout", "3s", "ping")
	switch r.code {
	case exitNotRunning:
		expect(t, r, exitNotRunning, ": connection refused", "Removed contact file for killed (workflow no longer running).", "killed is not running")
		if _, err := os.Lstat(filepath.Join(s.srvDir, keystore.ContactFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale contact file kept: %v", err)
		}
	case exitTimeout: // allowed by the contract; not expected on this host
		t.Logf("exit 2: %v", r)
	default:
		t.Errorf("want exit 4 (or 2): %v", r)
	}
	if r.took > 10*time.Second {
		t.Errorf("the client took %v", r.took)
	}
	expect(t, h.run("client", "--run-dir", runDir, "ping"), exitNotRunning, "killed is not running")

	again := h.startScheduler(runDir)
	again.waitContact()
	newKey, _ := os.ReadFile(filepath.Join(s.srvDir, keystore.ServerPublicKeyFile))
	if string(newKey) == string(oldKey) {
		t.Error("the restarted scheduler kept the old server key")
	}
	expect(t, h.run("client", "--run-dir", runDir, "ping"), 0)
	again.signal(syscall.SIGTERM)
	if code := again.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestSchedulerStaleContact: a contact file left by a dead scheduler does not stop a new
// one, which says so.
func TestSchedulerStaleContact(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "stale")
	srvDir := keystore.ServiceDir(runDir)
	if err := os.MkdirAll(srvDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := keystore.WriteContact(srvDir, keystore.Contact{
		keystore.ContactHost: "127.0.0.1", keystore.ContactPort: "1", keystore.ContactID: "stale",
		keystore.ContactPID: strconv.Itoa(deadPID(t)), keystore.ContactCommand: "curvezmq scheduler",
	}); err != nil {
		t.Fatal(err)
	}
	s := h.startScheduler(runDir)
	s.waitContact()
	if !strings.Contains(s.stderr.String(), "Removed contact file for stale (workflow no longer running).") {
		t.Errorf("stderr:\n%s", s.stderr.String())
	}
	s.signal(syscall.SIGTERM)
	s.wait()
}

// deadPID returns the PID of a process that has exited.
func deadPID(t testing.TB) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

// TestSchedulerPorts: ports come from the range; a port in use is a clear failure that
// leaves nothing behind.
func TestSchedulerPorts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	// Taken ports: exit 1, no keys left, the run directory free for the next scheduler.
	p := twoPorts(t)
	runDir := filepath.Join(t.TempDir(), "ports")
	s := h.startScheduler(runDir, "--ports", strconv.Itoa(p)+"-"+strconv.Itoa(p+2))
	if code := s.wait(); code != exitFailed || !strings.Contains(s.stderr.String(), "could not start the ZMQ server: REP socket: no free port in") {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}
	assertStopped(t, keystore.ServiceDir(runDir))

	// A range: both ports inside it. [p, p+100) is almost surely free apart from p and p+1,
	// which are still taken.
	lo, hi := p, min(p+100, 65535)
	s = h.startScheduler(runDir, "--ports", strconv.Itoa(lo)+"-"+strconv.Itoa(hi))
	c := s.waitContact()
	for _, k := range []string{keystore.ContactPort, keystore.ContactPublishPort} {
		if n, _ := strconv.Atoi(c[k]); n < lo+2 || n >= hi {
			t.Errorf("%s=%s, want in [%d, %d)", k, c[k], lo+2, hi)
		}
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// twoPorts listens on two consecutive ports until the test ends and returns the first.
func twoPorts(t testing.TB) int {
	t.Helper()
	for range 50 {
		l1, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		p := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", ":"+strconv.Itoa(p+1))
		if err != nil || p+2 > 65535 {
			l1.Close()
			continue
		}
		t.Cleanup(func() { l1.Close(); l2.Close() })
		return p
	}
	t.Fatal("found no two consecutive free ports")
	return 0
}

// TestSchedulerUsage: command line errors exit 1 before anything is made.
func TestSchedulerUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := filepath.Join(t.TempDir(), "r")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"scheduler"}, "give --run-dir or --id"},
		{[]string{"scheduler", "--run-dir", dir, "extra"}, "unexpected arguments"},
		{[]string{"scheduler", "--id", "a/../b"}, `has a ".." component`},
		{[]string{"scheduler", "--id", "/abs"}, "is absolute"},
		{[]string{"scheduler", "--id", "-x"}, "starts with '-'"},
		{[]string{"scheduler", "--id", "a b"}, "only letters, digits"},
		{[]string{"scheduler", "--id", "caf\u00e9"}, "only letters, digits"},
		{[]string{"scheduler", "--id", "a//b"}, "empty"},
		{[]string{"scheduler", "--run-dir", "/tmp/white space"}, "only letters, digits, '.', '_', '+', '@', '-' and '/' are allowed (give --id)"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "43001"}, "want MIN-MAX"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "5-3"}, "want 0 <= MIN <= MAX <= 65535"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "1-70000"}, "want 0 <= MIN <= MAX <= 65535"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "0-10"}, "port 0 only as 0-0"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "5000-5001"}, "must hold two ports"},
		{[]string{"scheduler", "--run-dir", dir, "--ports", "5000-5000"}, "must hold two ports, one per socket (0-0: any free ports)"},
		{[]string{"scheduler", "--run-dir", dir, "--host", "a b"}, "--host"},
		{[]string{"scheduler", "--run-dir", dir, "--bogus"}, "flag provided but not defined"},
	} {
		expect(t, h.run(c.args...), 1, c.msg, "usage: curvezmq scheduler")
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused command line made the run directory: %v", err)
	}
	if r := h.run("scheduler", "-h"); r.code != 0 || r.stdout != schedulerUsage {
		t.Errorf("%v", r)
	}
}

// TestSchedulerHost: --host sets only the contact file's host; the sockets listen on all
// interfaces, so 127.0.0.1 still reaches them.
func TestSchedulerHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "host")
	s := h.startScheduler(runDir, "--host", "localhost")
	c := s.waitContact()
	if c[keystore.ContactHost] != "localhost" {
		t.Errorf("host %q", c[keystore.ContactHost])
	}
	if _, err := sendRequest(t, s.srvDir, c, `{"command":"ping"}`); err != nil {
		t.Error(err)
	}
	expect(t, h.run("client", "--run-dir", runDir, "ping"), 0)
	s.signal(syscall.SIGTERM)
	s.wait()
}
