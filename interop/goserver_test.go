package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/handshake"
)

// Tests with pyzmq clients (curve_serverkey, curve_publickey, curve_secretkey) and our
// curve.Listen server.

// noReplyWait is how long a refused libzmq client is given to receive a reply that must
// never come. libzmq reconnects every 100 ms by default, so a client that did reconnect
// would also show in this window.
const noReplyWait = 300 * time.Millisecond

// echoN receives n messages on c and sends each back, checking each against want (which
// the messages must equal after the REQ envelope, if withEnvelope). It runs on its own
// goroutine and reports the first problem on the returned channel (nil when all went
// well).
func echoN(c *curve.Conn, want [][][]byte, withEnvelope bool) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for i, w := range want {
			c.SetReadDeadline(time.Now().Add(replyWait))
			m, err := c.Recv(nil)
			if err != nil {
				errc <- fmt.Errorf("Recv %d: %w", i, err)
				return
			}
			if withEnvelope {
				w = envelope(w)
			}
			if !sameMsg(m, w) {
				errc <- fmt.Errorf("message %d: got %s, want %s", i, describe(m), describe(w))
				return
			}
			if err := c.Send(m...); err != nil {
				errc <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	return errc
}

func waitErr(t testing.TB, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(replyWait):
		t.Fatal("the Go side did not finish")
	}
}

// A libzmq REQ client and a Go REP server: the server authenticates the client's key,
// sees its metadata, and answers every kind of request and 1000 requests in a row.
func TestLibzmqREQToGoREP(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Authorizer: curve.AllowKeys(cli.Public), Events: ev.add})
	py := startClientPeer(t, "REQ", s.addr, srv.Public, cli)
	c := s.accept(t)
	wantEvent(t, ev.next(t), curve.EventHandshakeSucceeded, 0)
	if v := py.waitMonitor("HANDSHAKE_SUCCEEDED"); v != 0 {
		t.Fatalf("libzmq HANDSHAKE_SUCCEEDED value %d", v)
	}
	if c.PeerPublicKey() != cli.Public {
		t.Fatalf("PeerPublicKey %v, want the client's %v", c.PeerPublicKey(), cli.Public)
	}
	if c.UserID() != cli.Public.String() {
		t.Fatalf("UserID %q", c.UserID())
	}
	wantProperty(t, c.PeerMetadata(), "Socket-Type", "REQ")

	msgs := append(battery(), numbered("request", 1000)...)
	errc := echoN(c, msgs, true)
	replies := py.request(replyWait, msgs...)
	waitErr(t, errc)
	for i := range msgs {
		wantMsg(t, fmt.Sprintf("reply %d", i), replies[i], msgs[i])
	}
}

// A libzmq DEALER client with a routing id and a Go ROUTER server: the Identity arrives,
// and 1000 messages pipelined in a row go each way in order.
func TestLibzmqDEALERToGoROUTER(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "ROUTER", Authorizer: curve.AllowKeys(cli.Public)})
	py := startClientPeer(t, "DEALER", s.addr, srv.Public, cli, "--identity=py-dealer")
	c := s.accept(t)
	if c.PeerPublicKey() != cli.Public {
		t.Fatal("PeerPublicKey is not the client's key")
	}
	wantProperty(t, c.PeerMetadata(), "Socket-Type", "DEALER")
	wantProperty(t, c.PeerMetadata(), "Identity", "py-dealer")

	msgs := append(battery(), numbered("pipelined", 1000)...)
	py.sendAsync(0, msgs...)
	for i, m := range msgs {
		wantMsg(t, fmt.Sprintf("message %d", i), recvMsg(t, c), m)
	}
	py.expect("sent")
	for _, m := range msgs {
		send(t, c, m)
	}
	got := py.recv(len(msgs), replyWait)
	for i, m := range msgs {
		wantMsg(t, fmt.Sprintf("reply %d", i), got[i], m)
	}
}

// refusedByGoServer runs a libzmq REQ client against a Go server whose authorizer
// answers status, and checks what each side reports: HANDSHAKE_FAILED_AUTH with the
// status on both, no reply, and no second attempt (libzmq's client gives up on ERROR).
func refusedByGoServer(t *testing.T, authorize curve.Authorizer, status int) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Authorizer: authorize, Events: ev.add})
	py := startClientPeer(t, "REQ", s.addr, srv.Public, cli)
	// Queued until a handshake succeeds; or, when the refusal came first, there is no
	// pipe to queue it on and libzmq's send times out (EAGAIN).
	py.post(map[string]any{"op": "send", "messages": hexMessages([][][]byte{msg("let me in")}), "after_ms": 0})
	if l := py.reply(replyWait); l.Event != "sent" && !(l.Event == "error" && strings.Contains(l.Error, "temporarily unavailable")) {
		t.Fatalf("send: %+v", l)
	}
	e := ev.next(t)
	wantEvent(t, e, curve.EventHandshakeFailedAuth, status)
	if e.PeerKey != cli.Public {
		t.Fatalf("event key %v, want the client's", e.PeerKey)
	}
	if v := py.waitMonitor("HANDSHAKE_FAILED_AUTH"); v != int64(status) {
		t.Fatalf("libzmq HANDSHAKE_FAILED_AUTH value %d, want %d", v, status)
	}
	py.recvNothing(noReplyWait)
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: libzmq reconnected after ERROR %d", n, status)
	}
}

// Our server refuses a key that is not allowed: ERROR "400", which libzmq reports as
// HANDSHAKE_FAILED_AUTH 400.
func TestGoServerRefuses400(t *testing.T) {
	refusedByGoServer(t, curve.AllowKeys(newKeyPair(t).Public), 400)
}

// An authorizer's internal error: ERROR "500", which libzmq reports as
// HANDSHAKE_FAILED_AUTH 500.
func TestGoServerRefuses500(t *testing.T) {
	refusedByGoServer(t, curve.AuthorizerFunc(func(context.Context, *curve.Request) curve.Result {
		return curve.Result{Status: curve.StatusInternalError, StatusText: "key store unavailable"}
	}), 500)
}

// A temporary failure (ZAP 300): as libzmq, our server says nothing and holds the
// connection until its handshake deadline, so libzmq's client sees no ERROR (no
// HANDSHAKE_FAILED_AUTH), only a disconnection, and tries again later.
func TestGoServerTemporary300(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Events: ev.add, HandshakeTimeout: 500 * time.Millisecond,
		Authorizer: curve.AuthorizerFunc(func(context.Context, *curve.Request) curve.Result {
			return curve.Result{Status: curve.StatusTemporary, StatusText: "try again"}
		})})
	py := startClientPeer(t, "REQ", s.addr, srv.Public, cli)
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 300)
	py.waitMonitor("DISCONNECTED")
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 300) // the client came back
	if n := py.monitorCount("HANDSHAKE_FAILED_AUTH") + py.monitorCount("HANDSHAKE_SUCCEEDED"); n != 0 {
		t.Fatalf("libzmq reports %d handshake outcomes, want none", n)
	}
}

// A libzmq client with the wrong server key: our server cannot open its HELLO, reports
// ZMTP_CRYPTOGRAPHIC and closes; the client never gets a reply.
func TestLibzmqClientWrongServerKey(t *testing.T) {
	t.Parallel()
	srv, cli, wrong := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Events: ev.add})
	py := startClientPeer(t, "REQ", s.addr, wrong.Public, cli)
	py.send(0, msg("hello?"))
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeCryptographic)
	py.recvNothing(noReplyWait)
	if py.monitorCount("HANDSHAKE_SUCCEEDED") != 0 {
		t.Fatal("libzmq reports a successful handshake")
	}
}

// A libzmq client without CURVE is refused, and libzmq itself reports
// ZMTP_MECHANISM_MISMATCH, having read our greeting. (That a message it queued never
// arrives is checked by the zmq4 matrix, which queues it before the handshake: queued
// after the handshake failed, libzmq has no pipe left and the send itself would block.)
func TestLibzmqNullClientRefused(t *testing.T) {
	t.Parallel()
	srv := newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Events: ev.add})
	py := startPeer(t, "client.py", "--type=REQ", "--connect=tcp://"+s.addr, "--null")
	py.ready()
	if e := ev.next(t); e.Kind == curve.EventHandshakeSucceeded {
		t.Fatalf("event %v", e)
	}
	if v := py.waitMonitor("HANDSHAKE_FAILED_PROTOCOL"); v != handshake.CodeMechanismMismatch {
		t.Fatalf("libzmq HANDSHAKE_FAILED_PROTOCOL value %#x, want ZMTP_MECHANISM_MISMATCH", v)
	}
	if py.monitorCount("HANDSHAKE_SUCCEEDED") != 0 {
		t.Fatal("libzmq reports a successful handshake")
	}
}

// Our server reports a libzmq NULL client as HANDSHAKE_FAILED_PROTOCOL
// ZMTP_MECHANISM_MISMATCH, as libzmq does. This needs the greeting sent as libzmq sends
// its own (signature and version first, the rest once the peer's have arrived): given all
// 64 bytes at once, libzmq closes on the mismatch without ever sending its mechanism.
func TestLibzmqNullClientRefusedSaysWhy(t *testing.T) {
	t.Parallel()
	srv := newKeyPair(t)
	ev := newEventLog()
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Events: ev.add})
	py := startPeer(t, "client.py", "--type=REQ", "--connect=tcp://"+s.addr, "--null")
	py.ready()
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeMechanismMismatch)
}

// libzmq's heartbeats against our server: a REQ client with ZMQ_HEARTBEAT_IVL 100 ms,
// ZMQ_HEARTBEAT_TIMEOUT 1 s and ZMQ_HEARTBEAT_TTL 1 s is idle for 1.5 s while our side
// waits in Recv; our Conn answers the PINGs, so libzmq keeps the connection (no
// DISCONNECTED, no second handshake) and our side honours the TTL without timing out. The
// next round trip then works on the same connection.
func TestLibzmqHeartbeatsToGoServer(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "REP", Authorizer: curve.AllowKeys(cli.Public)})
	py := startClientPeer(t, "REQ", s.addr, srv.Public, cli,
		"--heartbeat-ivl=100", "--heartbeat-timeout=1000", "--heartbeat-ttl=1000")
	c := s.accept(t)
	cc := counters(t, c)
	first, second := msg("before the idle"), msg("after the idle")
	errc := echoN(c, [][][]byte{first, second}, true) // in Recv throughout the idle

	wantMsg(t, "first reply", py.request(replyWait, first)[0], first)
	readBefore, writtenBefore := cc.read.Load(), cc.written.Load()
	const idle = 1500 * time.Millisecond
	time.Sleep(idle) // the idle period is what is under test, not a synchronisation
	pings := (cc.read.Load() - readBefore) / (2 + 33 + 7)
	pongs := (cc.written.Load() - writtenBefore) / (2 + 33 + 5)
	wantMsg(t, "second reply", py.request(replyWait, second)[0], second)
	waitErr(t, errc)

	t.Logf("%d PINGs received and %d PONGs sent in %v", pings, pongs, idle)
	if pings < 1 || pongs < 1 {
		t.Fatalf("%d PINGs received, %d PONGs sent during the idle", pings, pongs)
	}
	if n := py.monitorCount("DISCONNECTED"); n != 0 {
		t.Fatalf("libzmq reports %d disconnections", n)
	}
	if n := py.monitorCount("HANDSHAKE_SUCCEEDED"); n != 1 || s.accepted.Load() != 1 {
		t.Fatalf("%d handshakes, %d connections: libzmq reconnected", n, s.accepted.Load())
	}
}

// A libzmq SUB client and a Go PUB server. We announce ZMTP 3.0, so libzmq sends its
// subscription as the data frame "\x01" + topic (to a 3.1 peer it would send a SUBSCRIBE
// command); then what we publish on that topic arrives, and what we publish on another
// does not.
func TestLibzmqSUBToGoPUB(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	s := startGoServer(t, &curve.Config{KeyPair: srv, SocketType: "PUB", Authorizer: curve.AllowKeys(cli.Public)})
	py := startClientPeer(t, "SUB", s.addr, srv.Public, cli, "--subscribe=weather")
	c := s.accept(t)
	wantProperty(t, c.PeerMetadata(), "Socket-Type", "SUB")

	c.SetReadDeadline(time.Now().Add(replyWait))
	frame, more, err := c.RecvFrame(nil)
	if err != nil || more || string(frame) != "\x01weather" {
		t.Fatalf("RecvFrame: %q more=%v err=%v, want the subscription \"\\x01weather\"", frame, more, err)
	}
	send(t, c, msg("sports", "not subscribed"))
	send(t, c, msg("weather", "sunny"))
	wantMsg(t, "at the SUB", py.recv(1, replyWait)[0], msg("weather", "sunny"))
}
