package main

// Cylc-style peers on real libzmq: pyzmq clients and a subscriber against our scheduler,
// and our client against a pyzmq scheduler that follows Cylc's server recipe
// (testdata/*.py). They run with /usr/bin/python3, the interpreter Debian's python3-zmq
// installs into, or the one CURVEZMQ_INTEROP_PYTHON names (as in package interop), and
// skip, saying why, when it cannot import zmq.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"github.com/curvezmq/curvezmq/internal/pyzmq"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/keystore"
)

func python(t testing.TB) string { return pyzmq.Python(t, "pyzmq test") }

// pyProc is a running Python peer whose stdout lines are JSON objects.
type pyProc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	lines  chan map[string]any
	stderr *syncBuffer
	done   chan struct{}
	err    error // from Wait, once done
}

// startPython starts testdata/<script> with args; it is killed by its PID when the test
// ends, and after two minutes whatever happens.
func startPython(t testing.TB, script string, args ...string) *pyProc {
	t.Helper()
	py := python(t)
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), schedulerLifetime)
	cmd := exec.CommandContext(ctx, py, append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // no __pycache__ in testdata
	cmd.WaitDelay = time.Second
	p := &pyProc{t: t, name: script, cmd: cmd, lines: make(chan map[string]any, 16), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		p.read(stdout)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() // by PID: only the process this test started
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (pid %d) stderr:\n%s", script, cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

func (p *pyProc) read(r io.Reader) {
	defer close(p.lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = map[string]any{"unparsed": sc.Text()}
		}
		p.lines <- m
	}
}

// next returns the next stdout line, waiting at most d.
func (p *pyProc) next(d time.Duration) map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%s ended without the expected line:\n%s", p.name, p.stderr.String())
		}
		return m
	case <-time.After(d):
		p.t.Fatalf("%s printed nothing within %v:\n%s", p.name, d, p.stderr.String())
		return nil
	}
}

// wait waits for the process to end and returns its exit code.
func (p *pyProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%s still running after %v:\n%s", p.name, d, p.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	p.t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

// pyRequest runs testdata/cylc_client.py once and returns its one line.
func pyRequest(t testing.TB, runDir string, args ...string) map[string]any {
	t.Helper()
	p := startPython(t, "cylc_client.py", append([]string{runDir}, args...)...)
	line := p.next(commandWait)
	p.wait(commandWait)
	return line
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPyzmqPeersOnScheduler: a Cylc-style pyzmq client (load_certificate of
// client.key_secret and server.key, REQ, JSON) talks to our scheduler, malformed requests
// included, and a pyzmq SUB with the same keys receives the shutdown event.
func TestPyzmqPeersOnScheduler(t *testing.T) {
	t.Parallel()
	python(t)
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "flow", "py")
	s := h.startScheduler(runDir, "--id", "flow/py")
	s.waitContact()

	sub := startPython(t, "cylc_subscriber.py", runDir)
	if m := sub.next(startWait); m["event"] != "subscribed" {
		t.Fatalf("subscriber: %v", m)
	}

	if got := jsonText(pyRequest(t, runDir, "ping")); got != `{"reply":{"data":"pong"}}` {
		t.Errorf("ping: %s", got)
	}
	m := pyRequest(t, runDir, "auth")
	data, _ := m["reply"].(map[string]any)["data"].(map[string]any)
	if data == nil || data["keys"] != 1.0 || data["generation"].(float64) < 1 {
		t.Errorf("auth: %s", jsonText(m))
	}
	if got := jsonText(pyRequest(t, runDir, "x", "--raw", "not json")); got != `{"reply":{"error":{"message":"malformed request: not JSON"}}}` {
		t.Errorf("malformed request: %s", got)
	}
	if got := jsonText(pyRequest(t, runDir, "nonesuch")); !strings.Contains(got, `unknown command \"nonesuch\"`) {
		t.Errorf("unknown command: %s", got)
	}

	if r := h.run("client", "--run-dir", runDir, "stop"); r.code != 0 {
		t.Errorf("stop: %v", r)
	}
	if got := jsonText(sub.next(stopWait)); got != `{"event":"shutdown","parts":2,"payload":"stop requested"}` {
		t.Errorf("subscriber: %s", got)
	}
	if code := sub.wait(stopWait); code != 0 {
		t.Errorf("subscriber exit %d", code)
	}
	if code := s.wait(); code != 0 {
		t.Errorf("scheduler exit %d", code)
	}
	assertStopped(t, s.srvDir)
}

// TestClientOnPyzmqScheduler: our client reads the contact file and keys a Cylc-style pyzmq
// scheduler wrote (ThreadAuthenticator, configure_curve) and talks to it; refusals by
// libzmq get exit 3; our scheduler will not start on its run directory.
func TestClientOnPyzmqScheduler(t *testing.T) {
	t.Parallel()
	python(t)
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "flow", "cylc")
	srvDir := keystore.ServiceDir(runDir)
	srv := startPython(t, "cylc_server.py", runDir, "flow/cylc")
	deadline := time.Now().Add(startWait)
	for {
		if _, err := keystore.ReadContact(srvDir); err == nil {
			break
		}
		select {
		case <-srv.done:
			t.Fatalf("cylc_server.py exited early:\n%s", srv.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no contact file within %v:\n%s", startWait, srv.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	if r := h.run("client", "--run-dir", runDir, "ping"); r.code != 0 || r.stdout != "\"pong\"\n" {
		t.Errorf("ping: %v", r)
	}
	r := h.run("client", "--run-dir", runDir, "echo", "a=1", "b=two words", "c=")
	var echo struct {
		Command string            `json:"command"`
		Args    map[string]string `json:"args"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &echo); r.code != 0 || err != nil ||
		echo.Command != "echo" || len(echo.Args) != 3 || echo.Args["a"] != "1" || echo.Args["b"] != "two words" || echo.Args["c"] != "" {
		t.Errorf("echo: %+v (%v)", echo, r)
	}
	expect(t, h.run("client", "--run-dir", runDir, "--raw", `{"command":"echo","args":{"n":5}}`), 0)
	expect(t, h.run("client", "--run-dir", runDir, "hello"), 1, `curvezmq: client: flow/cylc: No method by the name "hello"`)

	// libzmq's refusals: ERROR 400 from its ZAP handler, silence after HELLO for a wrong
	// server key.
	intruder := filepath.Join(t.TempDir(), "cylc")
	copyFiles(t, srvDir, keystore.ServiceDir(intruder), keystore.ContactFileName, keystore.ServerPublicKeyFile)
	keygenAs(t, h, keystore.ServiceDir(intruder), "client")
	expect(t, h.run("client", "--run-dir", intruder, "ping"), exitRefused, "refused by the server (ERROR 400)")
	wrong := filepath.Join(t.TempDir(), "cylc")
	copyFiles(t, srvDir, keystore.ServiceDir(wrong), keystore.ContactFileName, keystore.ClientSecretKeyFile)
	keygenAs(t, h, keystore.ServiceDir(wrong), "server")
	expect(t, h.run("client", "--run-dir", wrong, "ping"), exitRefused, "wrong server key?")

	// A Cylc scheduler takes no lock: our scheduler finds it alive through its contact file.
	before := tree(t, srvDir)
	expect(t, h.run("scheduler", "--run-dir", runDir, "--ports", "0-0"), exitNotRunning,
		"another scheduler is running on this run directory; nothing was changed")
	if !equalTrees(before, tree(t, srvDir)) {
		t.Error("the refused scheduler changed the Cylc scheduler's files")
	}

	if r := h.run("client", "--run-dir", runDir, "stop"); r.code != 0 || r.stdout != "\"stopping\"\n" {
		t.Errorf("stop: %v", r)
	}
	if code := srv.wait(stopWait); code != 0 {
		t.Errorf("cylc_server.py exit %d:\n%s", code, srv.stderr.String())
	}
	assertStopped(t, srvDir)
	expect(t, h.run("client", "--run-dir", runDir, "ping"), exitNotRunning, "cylc is not running")
}

// TestPyzmqReadsKeygen: pyzmq's load_certificate reads what keygen writes.
func TestPyzmqReadsKeygen(t *testing.T) {
	t.Parallel()
	py := python(t)
	h := newHarness(t)
	dir := t.TempDir()
	r := h.run("keygen", "--dir", dir, "alice")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", `
import sys, zmq.auth
pub, none = zmq.auth.load_certificate(sys.argv[1] + ".key")
pub2, sec = zmq.auth.load_certificate(sys.argv[1] + ".key_secret")
assert none is None and pub == pub2 and len(sec) == 40
print(pub.decode())
`, filepath.Join(dir, "alice")).CombinedOutput()
	if err != nil || string(out) != r.stdout {
		t.Errorf("pyzmq read %q (%v), keygen printed %q", out, err, r.stdout)
	}
}
