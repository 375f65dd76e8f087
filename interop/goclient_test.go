package interop

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// Tests with our curve.Dial client and a libzmq server (pyzmq, curve_server=True, clients
// admitted by pyzmq's ThreadAuthenticator from a directory of public certificates).

// wantProperty checks one property of a peer's handshake metadata.
func wantProperty(t testing.TB, m curve.Metadata, name, want string) {
	t.Helper()
	got, ok := m.Get(name)
	if !ok || string(got) != want {
		t.Fatalf("peer property %s = %q (present %v), want %q; all: %v", name, got, ok, want, m)
	}
}

// wantEvent checks a handshake event's kind and code.
func wantEvent(t testing.TB, e curve.Event, kind curve.EventKind, code int) {
	t.Helper()
	if e.Kind != kind || e.Code != code {
		t.Fatalf("event %v (code %#x), want %v with code %#x", e, e.Code, kind, code)
	}
}

// A Go REQ client and a libzmq REP server: the handshake, libzmq's metadata, and request
// and reply for every kind of message and for 1000 messages in a row.
func TestGoREQToLibzmqREP(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "REP", srv, []curve.PublicKey{cli.Public})
	ev := newEventLog()
	c, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "REQ", Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ev.next(t), curve.EventHandshakeSucceeded, 0)
	if v := py.waitMonitor("HANDSHAKE_SUCCEEDED"); v != 0 {
		t.Fatalf("libzmq HANDSHAKE_SUCCEEDED value %d", v)
	}
	wantProperty(t, c.PeerMetadata(), "Socket-Type", "REP")
	if c.PeerPublicKey() != srv.Public {
		t.Fatal("PeerPublicKey is not the server's key")
	}

	msgs := append(battery(), numbered("request", 1000)...)
	py.echoAsync(len(msgs))
	for i, m := range msgs {
		send(t, c, envelope(m)) // REQ: the empty delimiter, then the request
		wantMsg(t, fmt.Sprintf("reply %d", i), recvMsg(t, c), envelope(m))
	}
	py.expect("echoed")
}

// A Go DEALER client and a libzmq ROUTER server: the ROUTER routes by the Identity we
// send, and 1000 messages pipelined in a row come back in order.
func TestGoDEALERToLibzmqROUTER(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "ROUTER", srv, []curve.PublicKey{cli.Public})
	c, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "DEALER", Identity: []byte("go-dealer")})
	if err != nil {
		t.Fatal(err)
	}
	wantProperty(t, c.PeerMetadata(), "Socket-Type", "ROUTER")
	py.waitMonitor("HANDSHAKE_SUCCEEDED")

	send(t, c, msg("first"))
	wantMsg(t, "at the ROUTER", py.recv(1, replyWait)[0], msg("go-dealer", "first"))
	py.send(0, msg("go-dealer", "routed back"))
	wantMsg(t, "from the ROUTER", recvMsg(t, c), msg("routed back"))

	msgs := append(battery(), numbered("pipelined", 1000)...)
	py.echoAsync(len(msgs))
	for _, m := range msgs {
		send(t, c, m)
	}
	for i, m := range msgs {
		wantMsg(t, fmt.Sprintf("echo %d", i), recvMsg(t, c), m)
	}
	py.expect("echoed")
}

// Close delivers what was sent before it: 200 messages, one of 1 MiB, sent and then
// closed at once, all reach a libzmq ROUTER.
func TestGoClientCloseFlushes(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "ROUTER", srv, []curve.PublicKey{cli.Public})
	c, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "DEALER", Identity: []byte("closer")})
	if err != nil {
		t.Fatal(err)
	}
	msgs := append(numbered("before close", 199), [][]byte{pseudoRandom("last", 1<<20)})
	for _, m := range msgs {
		send(t, c, m)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, m := range py.recv(len(msgs), replyWait) { // the ROUTER puts our routing id first
		wantMsg(t, fmt.Sprintf("message %d", i), m, append(msg("closer"), msgs[i]...))
	}
}

// A libzmq ZAP handler that does not list our key: Dial fails with an *AuthError carrying
// 400, and libzmq reports HANDSHAKE_FAILED_AUTH 400.
func TestGoClientRefusedByLibzmqZAP(t *testing.T) {
	t.Parallel()
	srv, cli, other := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "REP", srv, []curve.PublicKey{other.Public})
	ev := newEventLog()
	_, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "REQ", Events: ev.add})
	var ae *curve.AuthError
	if !errors.As(err, &ae) || ae.Status != 400 || !errors.Is(err, curve.ErrAuth) {
		t.Fatalf("Dial: %v, want an *AuthError with status 400", err)
	}
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 400)
	if v := py.waitMonitor("HANDSHAKE_FAILED_AUTH"); v != 400 {
		t.Fatalf("libzmq HANDSHAKE_FAILED_AUTH value %d, want 400", v)
	}
}

// A wrong server key: libzmq cannot open our HELLO and hangs up without a word; Dial
// fails promptly with ErrNoWelcome, and libzmq reports ZMTP_CRYPTOGRAPHIC.
func TestGoClientWrongServerKey(t *testing.T) {
	t.Parallel()
	srv, cli, wrong := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "REP", srv, []curve.PublicKey{cli.Public})
	ev := newEventLog()
	_, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: wrong.Public, SocketType: "REQ", Events: ev.add})
	if !errors.Is(err, curve.ErrNoWelcome) {
		t.Fatalf("Dial: %v, want ErrNoWelcome", err)
	}
	if e := ev.next(t); e.Kind == curve.EventHandshakeSucceeded || !errors.Is(e.Err, curve.ErrNoWelcome) {
		t.Fatalf("event %v (%v)", e, e.Err)
	}
	if v := py.waitMonitor("HANDSHAKE_FAILED_PROTOCOL"); v != handshake.CodeCryptographic {
		t.Fatalf("libzmq HANDSHAKE_FAILED_PROTOCOL value %#x, want ZMTP_CRYPTOGRAPHIC", v)
	}
}

// A libzmq server without CURVE refuses us, and says so in its own monitor: it has read
// our greeting and reports ZMTP_MECHANISM_MISMATCH. Dial fails at once.
func TestGoClientAgainstLibzmqNullServer(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py := startPeer(t, "server.py", "--type=REP", "--null")
	addr := fmt.Sprintf("127.0.0.1:%d", py.ready())
	ev := newEventLog()
	c, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "REQ", Events: ev.add})
	if err == nil || c != nil {
		t.Fatal("Dial to a NULL server succeeded")
	}
	if e := ev.next(t); e.Kind == curve.EventHandshakeSucceeded {
		t.Fatalf("event %v", e)
	}
	if v := py.waitMonitor("HANDSHAKE_FAILED_PROTOCOL"); v != handshake.CodeMechanismMismatch {
		t.Fatalf("libzmq HANDSHAKE_FAILED_PROTOCOL value %#x, want ZMTP_MECHANISM_MISMATCH", v)
	}
}

// Dial to a libzmq NULL server fails with an error that says why: a mechanism mismatch
// naming NULL, reported as HANDSHAKE_FAILED_PROTOCOL ZMTP_MECHANISM_MISMATCH, as a libzmq
// CURVE client reports it. libzmq sends the rest of its greeting only after it has read
// our version byte, and closes on a mismatch as soon as it has our whole greeting; so we
// send ours in the same two pieces (signature and version, then the rest).
func TestGoClientAgainstLibzmqNullServerSaysWhy(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py := startPeer(t, "server.py", "--type=REP", "--null")
	addr := fmt.Sprintf("127.0.0.1:%d", py.ready())
	ev := newEventLog()
	_, err := dial(t, addr, &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "REQ", Events: ev.add})
	if !errors.Is(err, zmtp.ErrMechanism) || !strings.Contains(err.Error(), `"NULL"`) {
		t.Errorf("Dial: %v, want a mechanism mismatch naming NULL", err)
	}
	if e := ev.next(t); e.Kind != curve.EventHandshakeFailedProtocol || e.Code != handshake.CodeMechanismMismatch {
		t.Errorf("event %v (code %#x), want HANDSHAKE_FAILED_PROTOCOL ZMTP_MECHANISM_MISMATCH", e, e.Code)
	}
}

// Our heartbeats against libzmq: with HeartbeatInterval and a HeartbeatTimeout far
// shorter than the 1.5 s the server takes to reply, RecvFrame (inside Recv) does not fail
// with ErrHeartbeat, because libzmq answers every PING with a PONG.
func TestGoHeartbeatsAgainstLibzmq(t *testing.T) {
	t.Parallel()
	srv, cli := newKeyPair(t), newKeyPair(t)
	py, addr := startServerPeer(t, "REP", srv, []curve.PublicKey{cli.Public})
	cfg := &curve.Config{KeyPair: cli, ServerKey: srv.Public, SocketType: "REQ",
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 750 * time.Millisecond, HeartbeatTTL: time.Second}
	c := dialCounted(t, addr, cfg)
	cc := counters(t, c)

	send(t, c, envelope(msg("slow request")))
	wantMsg(t, "at the REP", py.recv(1, replyWait)[0], msg("slow request"))
	const idle = 1500 * time.Millisecond
	readBefore, writtenBefore := cc.read.Load(), cc.written.Load()
	start := time.Now()
	py.sendAsync(idle, msg("late reply")) // the peer is silent for idle, then replies
	got := recvMsg(t, c)
	waited := time.Since(start)
	wantMsg(t, "the late reply", got, envelope(msg("late reply")))
	py.expect("sent")
	if waited <= cfg.HeartbeatTimeout {
		t.Fatalf("the reply came after %v, within the heartbeat timeout: nothing was tested", waited)
	}
	// Besides the reply (two MESSAGE frames, 35 + 45 bytes), only PONGs (40 bytes each)
	// reached us; only PINGs (42 bytes each) left.
	const replyBytes, pongBytes, pingBytes = 35 + 45, 2 + 33 + 5, 2 + 33 + 7
	pongs := (cc.read.Load() - readBefore - replyBytes) / pongBytes
	pings := (cc.written.Load() - writtenBefore) / pingBytes
	t.Logf("%d PINGs sent and %d PONGs received in %v", pings, pongs, waited)
	if pongs < 1 || pings < 1 {
		t.Fatalf("%d PINGs sent, %d PONGs received", pings, pongs)
	}
}
