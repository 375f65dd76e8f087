package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/curvezmq/curvezmq/internal/pyzmq"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	// peerLifetime bounds a peer process: it is killed after this long whatever happens.
	peerLifetime = 45 * time.Second
	// replyWait bounds the wait for a peer's answer to one command (or its "ready").
	replyWait = 10 * time.Second
	// eventWait bounds the wait for a monitor event or one of our own handshake events.
	eventWait = 10 * time.Second
)

// python returns the interpreter with pyzmq, or skips the test.
func python(t testing.TB) string { return pyzmq.Python(t, "libzmq interop test") }

// line is one JSON line from a peer: a reply to a command or an unprompted report.
type line struct {
	Event    string     `json:"event"`
	Port     int        `json:"port"`
	Name     string     `json:"name"`  // monitor event name
	Value    int64      `json:"value"` // monitor event value
	Count    int        `json:"count"`
	Messages [][]string `json:"messages"`
	Error    string     `json:"error"`
}

// peer is a running Python libzmq peer (interop/peers/*.py).
type peer struct {
	t     testing.TB
	name  string
	stdin io.WriteCloser
	done  chan struct{} // closed when stdout is drained

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever something arrives
	replies []line
	monitor []line
	readErr error // set once stdout has ended
	stderr  bytes.Buffer
}

// startPeer starts peers/<script> with args and stops it, by PID, when the test ends.
func startPeer(t testing.TB, script string, args ...string) *peer {
	t.Helper()
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerLifetime)
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join("peers", script)}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // no __pycache__ in the source tree
	p := &peer{t: t, name: script, done: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", script, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		defer cancel()
		p.stdin.Close() // the peer exits at the end of its stdin
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
		}
		cmd.Process.Kill() // by PID: only the process we started; harmless if it has exited
		cmd.Wait()
		if t.Failed() && p.stderrText() != "" {
			t.Logf("%s (pid %d) stderr:\n%s", script, cmd.Process.Pid, p.stderrText())
		}
	})
	return p
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *peer) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// read drains the peer's stdout, so that it never blocks on a full pipe, sorting lines
// into monitor events and replies.
func (p *peer) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // a 1 MiB message is 2 MiB of hex
	for sc.Scan() {
		var l line
		err := json.Unmarshal(sc.Bytes(), &l)
		p.mu.Lock()
		switch {
		case err != nil:
			p.readErr = fmt.Errorf("%s printed a line that is not JSON: %q", p.name, truncate(sc.Bytes(), 200))
		case l.Event == "monitor":
			p.monitor = append(p.monitor, l)
		default:
			p.replies = append(p.replies, l)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	p.mu.Lock()
	if p.readErr == nil {
		p.readErr = sc.Err()
	}
	if p.readErr == nil {
		p.readErr = fmt.Errorf("%s closed its stdout", p.name)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// await waits, at most d, until cond (called with p.mu held) returns true.
func (p *peer) await(d time.Duration, what string, cond func() bool) {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok, ch, rerr := cond(), p.changed, p.readErr
		p.mu.Unlock()
		if ok {
			return
		}
		if rerr != nil { // nothing more will arrive
			p.t.Fatalf("%s: no %s: %v\nstderr:\n%s", p.name, what, rerr, p.stderrText())
		}
		select {
		case <-ch:
		case <-timer.C:
			p.t.Fatalf("%s: no %s within %v\nstderr:\n%s", p.name, what, d, p.stderrText())
		}
	}
}

// reply returns the next reply line, waiting at most d.
func (p *peer) reply(d time.Duration) line {
	p.t.Helper()
	var l line
	p.await(d, "reply", func() bool {
		if len(p.replies) == 0 {
			return false
		}
		l, p.replies = p.replies[0], p.replies[1:]
		return true
	})
	return l
}

// post writes one command to the peer without waiting for its reply.
func (p *peer) post(cmd map[string]any) {
	p.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("%s: writing a command: %v", p.name, err)
	}
}

// command sends one command and returns the peer's reply, which must be of kind want.
func (p *peer) command(want string, cmd map[string]any) line {
	p.t.Helper()
	p.post(cmd)
	return p.expect(want)
}

// expect returns the next reply, which must be of kind want.
func (p *peer) expect(want string) line {
	p.t.Helper()
	l := p.reply(replyWait)
	if l.Event != want {
		p.t.Fatalf("%s: got %q (%+v), want %q", p.name, l.Event, l, want)
	}
	return l
}

// ready waits for the peer's "ready" line and returns the port it bound (0 for a client).
func (p *peer) ready() int {
	p.t.Helper()
	return p.expect("ready").Port
}

// send makes the peer send msgs, after a pause of after if positive.
func (p *peer) send(after time.Duration, msgs ...[][]byte) {
	p.t.Helper()
	p.command("sent", map[string]any{"op": "send", "messages": hexMessages(msgs), "after_ms": after.Milliseconds()})
}

// sendAsync makes the peer send msgs after a pause, without waiting for it to confirm;
// collect the confirmation later with expect("sent").
func (p *peer) sendAsync(after time.Duration, msgs ...[][]byte) {
	p.t.Helper()
	p.post(map[string]any{"op": "send", "messages": hexMessages(msgs), "after_ms": after.Milliseconds()})
}

// recv makes the peer receive n messages, each within timeout, and returns them.
func (p *peer) recv(n int, timeout time.Duration) [][][]byte {
	p.t.Helper()
	l := p.command("recv", map[string]any{"op": "recv", "count": n, "timeout_ms": timeout.Milliseconds()})
	return p.unhex(l.Messages)
}

// recvNothing asserts that the peer receives no message within timeout.
func (p *peer) recvNothing(timeout time.Duration) {
	p.t.Helper()
	l := p.command("timeout", map[string]any{"op": "recv", "count": 1, "timeout_ms": timeout.Milliseconds()})
	if len(l.Messages) != 0 {
		p.t.Fatalf("%s received %d messages", p.name, len(l.Messages))
	}
}

// request makes a REQ peer send each message and wait for its reply; it returns the
// replies.
func (p *peer) request(timeout time.Duration, msgs ...[][]byte) [][][]byte {
	p.t.Helper()
	l := p.command("replies", map[string]any{"op": "request", "messages": hexMessages(msgs), "timeout_ms": timeout.Milliseconds()})
	return p.unhex(l.Messages)
}

// echoAsync makes the peer echo the next n messages it receives; collect the
// confirmation with expect("echoed").
func (p *peer) echoAsync(n int) {
	p.t.Helper()
	p.post(map[string]any{"op": "echo", "count": n, "timeout_ms": replyWait.Milliseconds()})
}

// waitMonitor waits for a monitor event called name and returns its value. Events stay
// recorded: waiting twice for the same name finds the same first event.
func (p *peer) waitMonitor(name string) int64 {
	p.t.Helper()
	var v int64
	p.await(eventWait, "monitor event "+name, func() bool {
		for _, l := range p.monitor {
			if l.Name == name {
				v = l.Value
				return true
			}
		}
		return false
	})
	return v
}

// monitorCount returns how many monitor events called name the peer has reported so far.
func (p *peer) monitorCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.monitor {
		if l.Name == name {
			n++
		}
	}
	return n
}

func (p *peer) unhex(in [][]string) [][][]byte {
	p.t.Helper()
	out := make([][][]byte, len(in))
	for i, m := range in {
		out[i] = make([][]byte, len(m))
		for j, h := range m {
			b, err := hex.DecodeString(h)
			if err != nil {
				p.t.Fatalf("%s: bad hex: %v", p.name, err)
			}
			out[i][j] = b
		}
	}
	return out
}

func hexMessages(msgs [][][]byte) [][]string {
	out := make([][]string, len(msgs))
	for i, m := range msgs {
		out[i] = make([]string, len(m))
		for j, f := range m {
			out[i][j] = hex.EncodeToString(f)
		}
	}
	return out
}
