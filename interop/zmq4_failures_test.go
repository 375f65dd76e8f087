package interop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
	"github.com/curvezmq/curvezmq/zap"
)

// The failure half of the zmq4 matrix: refused keys, wrong server keys, NULL clients,
// half-open connections and peers that stop mid-handshake, for every pair in every
// direction where the case concerns our side. Nothing may hang, a refused connection must
// never reach zmq4, and once all the sockets are closed no file descriptor and no
// goroutine may be left: every subtest's handshake failed or was abandoned.

const (
	// zmq4HalfOpenDeadline is the Go server's handshake deadline while 100 idle
	// connections hold it: long enough for a libzmq client to start and be served within it.
	zmq4HalfOpenDeadline = 3 * time.Second
	// zmq4StallDeadline is the handshake deadline when a peer stops mid-handshake.
	zmq4StallDeadline = 500 * time.Millisecond
	// zmq4Slack bounds how late after its deadline a connection may be closed.
	zmq4Slack = 2 * time.Second
)

func TestZmq4Failures(t *testing.T) {
	python(t)
	zmq4NoLeaks(t)
	for _, p := range zmq4Pairs {
		cases := []struct {
			name string
			f    func(*testing.T, zmq4Pair)
		}{
			{"refused-key/" + p.name(true), zmq4RefusedByGoServer},
			{"refused-key/" + p.name(false), zmq4RefusedByLibzmq},
			{"wrong-server-key/" + p.name(true), zmq4WrongKeyToGoServer},
			{"wrong-server-key/" + p.name(false), zmq4WrongKeyFromGoClient},
			{"null-client/" + p.name(true), zmq4NullClient},
			{"half-open/" + p.name(true), zmq4HalfOpen},
			{"stalled-handshake/" + p.name(true), zmq4StalledClient},
			{"stalled-handshake/" + p.name(false), zmq4StalledServer},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.f(t, p)
			})
		}
	}
}

// zmq4GoServer makes a listening Go server socket of the pair's server type with cfg; its
// events go to the returned log. REP, ROUTER and PULL receive in the background.
func zmq4GoServer(t *testing.T, p zmq4Pair, cfg *curve.Config) (*zmq4Socket, *eventLog) {
	t.Helper()
	ev := newEventLog()
	cfg.Server, cfg.Events = true, ev.add
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = handshakeWait
	}
	sock := newZmq4Socket(t, p.newServer, cfg)
	if err := sock.Listen("curve://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if p.server != "PUB" {
		sock.pump()
	}
	return sock, ev
}

// zmq4ServeOne has the libzmq client py and the Go server sock exchange one message with
// text, which must be the first thing the Go server receives.
func zmq4ServeOne(t *testing.T, p zmq4Pair, sock *zmq4Socket, py *peer, text string) {
	t.Helper()
	switch p.server {
	case "REP":
		errc := make(chan error, 1)
		go func() {
			m, err := sock.recvErr(replyWait)
			if err == nil && !sameMsg(m.Frames, msg(text)) {
				err = fmt.Errorf("the Go REP received %s first, want %q", describe(m.Frames), text)
			}
			if err == nil {
				err = sock.send(m.Frames)
			}
			errc <- err
		}()
		wantMsg(t, "reply at libzmq", py.request(replyWait, msg(text))[0], msg(text))
		zmq4Wait(t, errc, replyWait)
	case "PUB":
		sock.waitTopic(t, zmq4Topic)
		if err := sock.send(msg(zmq4Topic, text)); err != nil {
			t.Fatal(err)
		}
		wantMsg(t, "at libzmq SUB", py.recv(1, replyWait)[0], msg(zmq4Topic, text))
	case "ROUTER":
		py.send(0, msg(text))
		wantMsg(t, "first at the Go ROUTER", sock.recv(t), msg(zmq4PyDealerID, text))
	case "PULL":
		py.send(0, msg(text))
		wantMsg(t, "first at the Go PULL", sock.recv(t), msg(text))
	}
}

// zmq4SendOnConnect makes a libzmq client (but a SUB) queue a message at once, so that it
// would reach the Go server if the handshake got through. Sent later, after libzmq has
// given up the connection, it could block for want of a pipe.
func zmq4SendOnConnect(p zmq4Pair, text string) []string {
	if p.client == "SUB" {
		return nil
	}
	return []string{"--send-on-connect=" + text}
}

// zmq4NoMoreEvents checks that no handshake event is waiting in ev.
func zmq4NoMoreEvents(t *testing.T, ev *eventLog) {
	t.Helper()
	if n := len(ev.ch); n != 0 {
		t.Fatalf("%d more handshake events; the first: %v", n, <-ev.ch)
	}
}

// zmq4QuietLog checks that zmq4 logged nothing: no failed connection ever reached it.
func zmq4QuietLog(t *testing.T, sock *zmq4Socket) {
	t.Helper()
	if l := sock.log.String(); l != "" {
		t.Fatalf("zmq4 logged:\n%s", l)
	}
}

// A libzmq client whose key is not allowed by our server (a zap.Authenticator reading a
// directory of pyzmq certificates, as Cylc's server would): both sides report
// HANDSHAKE_FAILED_AUTH 400, libzmq does not try again, the refused client's message never
// reaches zmq4, and an allowed client is served next.
func zmq4RefusedByGoServer(t *testing.T, p zmq4Pair) {
	srv, bad, good := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	auth := zap.New(zap.Config{})
	t.Cleanup(func() { auth.Close() })
	if err := auth.ConfigureCurve(zap.DefaultDomain, allowDir(t, good.Public)); err != nil {
		t.Fatal(err)
	}
	sock, ev := zmq4GoServer(t, p, &curve.Config{KeyPair: srv, Authorizer: auth})
	addr := sock.Addr().String()
	py := zmq4ClientPeer(t, p.client, addr, srv.Public, bad, zmq4SendOnConnect(p, "let me in")...)
	e := ev.next(t)
	wantEvent(t, e, curve.EventHandshakeFailedAuth, 400)
	if e.PeerKey != bad.Public {
		t.Fatalf("event key %v, want the refused client's", e.PeerKey)
	}
	if v := py.waitMonitor("HANDSHAKE_FAILED_AUTH"); v != 400 {
		t.Fatalf("libzmq HANDSHAKE_FAILED_AUTH value %d, want 400", v)
	}

	goodPy := zmq4ClientPeer(t, p.client, addr, srv.Public, good)
	wantEvent(t, ev.next(t), curve.EventHandshakeSucceeded, 0)
	zmq4ServeOne(t, p, sock, goodPy, "allowed")
	if p.client == "SUB" {
		py.recvNothing(noReplyWait)
	}
	zmq4NoMoreEvents(t, ev) // libzmq gives up on ERROR 400
	if n := py.monitorCount("HANDSHAKE_FAILED_AUTH"); n != 1 {
		t.Fatalf("libzmq reports %d refusals, want 1", n)
	}
	zmq4QuietLog(t, sock)
}

// A Go client whose key the libzmq server's ThreadAuthenticator does not list: Dial fails
// at once with an *AuthError 400 (zmq4 does not retry a failed Open, nor does the
// transport a refusal), and libzmq reports HANDSHAKE_FAILED_AUTH 400.
func zmq4RefusedByLibzmq(t *testing.T, p zmq4Pair) {
	srv, cli, other := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	py, addr := zmq4ServerPeer(t, p.server, srv, []curve.PublicKey{other.Public})
	ev := newEventLog()
	sock := newZmq4Socket(t, p.newClient, &curve.Config{KeyPair: cli, ServerKey: srv.Public, Events: ev.add,
		HandshakeTimeout: handshakeWait}, zmq4ClientOpts(p.client, zmq4.WithDialerMaxRetries(0))...)
	start := time.Now()
	err := sock.Dial("curve://" + addr)
	var ae *curve.AuthError
	if !errors.As(err, &ae) || ae.Status != 400 || !errors.Is(err, curve.ErrAuth) {
		t.Fatalf("Dial: %v, want an *AuthError with status 400", err)
	}
	t.Logf("Dial failed after %v: %v", time.Since(start), err)
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 400)
	if v := py.waitMonitor("HANDSHAKE_FAILED_AUTH"); v != 400 {
		t.Fatalf("libzmq HANDSHAKE_FAILED_AUTH value %d, want 400", v)
	}
	zmq4NoMoreEvents(t, ev)
}

// A libzmq client with the wrong server key: our server cannot open its HELLO, reports
// ZMTP_CRYPTOGRAPHIC and hangs up at once, as libzmq would; libzmq sees the disconnection
// and tries again, and is refused again just as promptly. Nothing reaches zmq4.
func zmq4WrongKeyToGoServer(t *testing.T, p zmq4Pair) {
	srv, cli, wrong := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	sock, ev := zmq4GoServer(t, p, &curve.Config{KeyPair: srv, Authorizer: curve.AllowKeys(cli.Public)})
	py := zmq4ClientPeer(t, p.client, sock.Addr().String(), wrong.Public, cli)
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeCryptographic)
	py.waitMonitor("DISCONNECTED")
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeCryptographic) // libzmq's retry
	if n := py.monitorCount("HANDSHAKE_SUCCEEDED"); n != 0 {
		t.Fatalf("libzmq reports %d successful handshakes", n)
	}
	if p.server != "PUB" {
		sock.recvNothing(t, noReplyWait)
	}
	zmq4QuietLog(t, sock)
}

// A Go client with the wrong server key: libzmq hangs up after HELLO, and Dial fails
// with ErrNoWelcome after zmq4's retries (two attempts here), without hanging; libzmq
// reports ZMTP_CRYPTOGRAPHIC.
func zmq4WrongKeyFromGoClient(t *testing.T, p zmq4Pair) {
	srv, cli, wrong := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	py, addr := zmq4ServerPeer(t, p.server, srv, []curve.PublicKey{cli.Public})
	ev := newEventLog()
	sock := newZmq4Socket(t, p.newClient, &curve.Config{KeyPair: cli, ServerKey: wrong.Public, Events: ev.add,
		HandshakeTimeout: handshakeWait}, zmq4ClientOpts(p.client, zmq4.WithDialerMaxRetries(1), zmq4.WithDialerRetry(50*time.Millisecond))...)
	start := time.Now()
	err := sock.Dial("curve://" + addr)
	if !errors.Is(err, curve.ErrNoWelcome) {
		t.Fatalf("Dial: %v, want ErrNoWelcome", err)
	}
	if d := time.Since(start); d > handshakeWait {
		t.Fatalf("Dial took %v", d)
	}
	for i := 0; i < 2; i++ {
		if e := ev.next(t); !errors.Is(e.Err, curve.ErrNoWelcome) {
			t.Fatalf("attempt %d: event %v (%v), want ErrNoWelcome", i+1, e, e.Err)
		}
	}
	zmq4NoMoreEvents(t, ev)
	if v := py.waitMonitor("HANDSHAKE_FAILED_PROTOCOL"); v != handshake.CodeCryptographic {
		t.Fatalf("libzmq HANDSHAKE_FAILED_PROTOCOL value %#x, want ZMTP_CRYPTOGRAPHIC", v)
	}
}

// A libzmq client without CURVE (NULL): both sides report ZMTP_MECHANISM_MISMATCH and
// nothing it sends reaches zmq4.
func zmq4NullClient(t *testing.T, p zmq4Pair) {
	srv := newKeyPair(t)
	sock, ev := zmq4GoServer(t, p, &curve.Config{KeyPair: srv})
	args := []string{"--type=" + p.client, "--connect=tcp://" + sock.Addr().String(), "--null"}
	if p.client == "SUB" {
		args = append(args, "--subscribe="+zmq4Topic)
	}
	py := startZmq4Peer(t, append(args, zmq4SendOnConnect(p, "plain text")...)...)
	py.ready()
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeMechanismMismatch)
	if v := py.waitMonitor("HANDSHAKE_FAILED_PROTOCOL"); v != handshake.CodeMechanismMismatch {
		t.Fatalf("libzmq HANDSHAKE_FAILED_PROTOCOL value %#x, want ZMTP_MECHANISM_MISMATCH", v)
	}
	if p.server != "PUB" {
		sock.recvNothing(t, noReplyWait)
	}
	if n := py.monitorCount("HANDSHAKE_SUCCEEDED"); n != 0 {
		t.Fatalf("libzmq reports %d successful handshakes", n)
	}
	zmq4QuietLog(t, sock)
}

// zmq4Idle opens n connections to addr that start a handshake and stop: some send
// nothing, some the greeting's first 10 bytes, some the whole greeting and half a HELLO.
func zmq4Idle(t *testing.T, addr string, n int, srv curve.PublicKey) []net.Conn {
	t.Helper()
	greeting := zmtp.AppendGreeting(nil, "CURVE", 0, false)
	hello := zmq4Hello(t, srv)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, handshakeWait)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var out []byte
		switch i % 3 {
		case 1:
			out = greeting[:10]
		case 2:
			out = append(append(out, greeting...), hello[:len(hello)/2]...)
		}
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// zmq4Hello returns a valid HELLO frame for server key srv.
func zmq4Hello(t *testing.T, srv curve.PublicKey) []byte {
	t.Helper()
	kp := newKeyPair(t)
	hc, err := handshake.NewClient(&handshake.Config{KeyPair: &kp, ServerKey: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Clear()
	body, err := hc.Hello(nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(zmtp.AppendHeader(nil, zmtp.FlagCommand, len(body)), body...)
}

// zmq4WaitClosed reads c until the other side closes it, and returns when that happened;
// it fails if c is still open by the deadline.
func zmq4WaitClosed(t *testing.T, c net.Conn, deadline time.Time) time.Time {
	t.Helper()
	c.SetReadDeadline(deadline)
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			if zmq4IsTimeout(err) {
				t.Fatalf("connection %v still open at %v", c.LocalAddr(), deadline.Format(time.StampMilli))
			}
			return time.Now()
		}
	}
}

// zmq4StillOpen reads what c has received so far (our greeting) and returns nil if the
// other side has not closed it, or the error that says it has.
func zmq4StillOpen(c net.Conn) error {
	b := make([]byte, 512)
	for {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(b); zmq4IsTimeout(err) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func zmq4IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// 100 idle half-open connections hold our server while a libzmq client connects: it is
// served before their deadline, so it did not wait behind them; then each of them is
// closed at the deadline, and none reached zmq4.
func zmq4HalfOpen(t *testing.T, p zmq4Pair) {
	srv, cli := newKeyPair(t), newKeyPair(t)
	sock, ev := zmq4GoServer(t, p, &curve.Config{KeyPair: srv, Authorizer: curve.AllowKeys(cli.Public),
		HandshakeTimeout: zmq4HalfOpenDeadline})
	addr := sock.Addr().String()
	opened := time.Now()
	idle := zmq4Idle(t, addr, 100, srv.Public)
	py := zmq4ClientPeer(t, p.client, addr, srv.Public, cli)
	zmq4ServeOne(t, p, sock, py, "served")
	served := time.Since(opened)
	for _, c := range idle { // served while all of them were still open
		if err := zmq4StillOpen(c); err != nil {
			t.Fatalf("an idle connection was closed (%v) before the good client had been served, %v after they opened: too slow to tell", err, served)
		}
	}
	first, last := time.Time{}, time.Time{}
	for _, c := range idle {
		at := zmq4WaitClosed(t, c, opened.Add(zmq4HalfOpenDeadline+zmq4Slack))
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	t.Logf("good client served %v, idle connections closed %v to %v after they opened", served, first.Sub(opened), last.Sub(opened))
	if first.Sub(opened) < zmq4HalfOpenDeadline*9/10 {
		t.Fatalf("an idle connection was closed after %v, before the deadline", first.Sub(opened))
	}
	var ok, failed int
	for ok+failed < 101 {
		if ev.next(t).Kind == curve.EventHandshakeSucceeded {
			ok++
		} else {
			failed++
		}
	}
	if ok != 1 {
		t.Fatalf("%d handshakes succeeded, want 1", ok)
	}
	zmq4QuietLog(t, sock)
}

// A client that stops mid-handshake, after our WELCOME (it never sends INITIATE): our
// server closes the connection at its deadline, reports the failure, and zmq4 never sees
// the connection.
func zmq4StalledClient(t *testing.T, p zmq4Pair) {
	srv := newKeyPair(t)
	sock, ev := zmq4GoServer(t, p, &curve.Config{KeyPair: srv, HandshakeTimeout: zmq4StallDeadline})
	start := time.Now()
	c, err := net.DialTimeout("tcp", sock.Addr().String(), handshakeWait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append(zmtp.AppendGreeting(nil, "CURVE", 0, false), zmq4Hello(t, srv.Public)...)); err != nil {
		t.Fatal(err)
	}
	// Our greeting (64 bytes), then WELCOME (a 168-byte command: 2 + 168 on the wire).
	c.SetReadDeadline(start.Add(handshakeWait))
	got, err := io.ReadFull(c, make([]byte, 64+2+168))
	if err != nil {
		t.Fatalf("reading greeting and WELCOME: %d bytes, %v", got, err)
	}
	closed := zmq4WaitClosed(t, c, start.Add(zmq4StallDeadline+zmq4Slack)).Sub(start)
	if closed < zmq4StallDeadline*9/10 {
		t.Fatalf("closed after %v, before the deadline %v", closed, zmq4StallDeadline)
	}
	t.Logf("closed %v after connecting (deadline %v)", closed, zmq4StallDeadline)
	if e := ev.next(t); e.Kind == curve.EventHandshakeSucceeded {
		t.Fatalf("event %v", e)
	}
	zmq4QuietLog(t, sock)
}

// A libzmq server that stops mid-handshake: its ZAP handler never answers, so after
// WELCOME and our INITIATE nothing comes. Dial fails at our deadline, and libzmq sees us
// hang up.
func zmq4StalledServer(t *testing.T, p zmq4Pair) {
	srv, cli := newKeyPair(t), newKeyPair(t)
	py := startZmq4Peer(t, "--type="+p.server, "--bind", "--secret="+z85Secret(srv), "--zap-stall")
	addr := fmt.Sprintf("127.0.0.1:%d", py.ready())
	ev := newEventLog()
	sock := newZmq4Socket(t, p.newClient, &curve.Config{KeyPair: cli, ServerKey: srv.Public, Events: ev.add,
		HandshakeTimeout: zmq4StallDeadline}, zmq4ClientOpts(p.client, zmq4.WithDialerMaxRetries(0))...)
	start := time.Now()
	err := sock.Dial("curve://" + addr)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	t.Logf("Dial failed after %v: %v", took, err)
	if took < zmq4StallDeadline*9/10 || took > zmq4StallDeadline+zmq4Slack {
		t.Fatalf("Dial failed after %v, want about %v", took, zmq4StallDeadline)
	}
	py.waitMonitor("ZAP_REQUEST_HELD")
	if e := ev.next(t); e.Kind == curve.EventHandshakeSucceeded {
		t.Fatalf("event %v", e)
	}
	py.waitMonitor("HANDSHAKE_FAILED_NO_DETAIL")
}

// A handshake that a libzmq server stalls fails as a timeout, whatever the timing:
// errors.Is(err, os.ErrDeadlineExceeded) for Dial's error and for the event's. (The
// dial side's timer for zmq4's NULL handshake used to close the connection at the same
// instant, and half the attempts reported a closed connection instead.)
func TestZmq4StalledHandshakeIsTimeout(t *testing.T) {
	t.Parallel()
	srv := newKeyPair(t)
	py := startZmq4Peer(t, "--type=REP", "--bind", "--secret="+z85Secret(srv), "--zap-stall")
	addr := fmt.Sprintf("curve://127.0.0.1:%d", py.ready())
	const attempts = 16 // concurrent, so that the race goes the wrong way at least once
	errs := make(chan error, 2*attempts)
	for i := 0; i < attempts; i++ {
		ev := newEventLog()
		sock := newZmq4Socket(t, zmq4.NewReq, &curve.Config{KeyPair: newKeyPair(t), ServerKey: srv.Public, Events: ev.add,
			HandshakeTimeout: zmq4StallDeadline}, zmq4.WithDialerMaxRetries(0))
		go func() {
			errs <- sock.Dial(addr)
			select {
			case e := <-ev.ch:
				errs <- e.Err
			case <-time.After(eventWait):
				errs <- errors.New("no handshake event")
			}
		}()
	}
	for i := 0; i < 2*attempts; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("got %v, want a timeout", err)
			}
		case <-time.After(handshakeWait):
			t.Fatal("a Dial did not return")
		}
	}
}
