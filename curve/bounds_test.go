package curve

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// What ends a handshake early: a Tracker closing the connection from inside Track, a ctx
// ending while a 300 refusal lingers, a listener closing then, a receive's read deadline.
// Each handshake timeout here is far longer than the bound checked, so a wait for it fails.

// closingTracker allows every client and closes each connection as soon as it is tracked,
// from inside Track, as the Tracker contract allows.
type closingTracker struct{ untracked chan struct{} }

func (closingTracker) Authorize(context.Context, *handshake.Request) handshake.Result {
	return handshake.Result{Status: StatusOK, StatusText: "OK"}
}

func (t closingTracker) Track(_ PublicKey, c io.Closer) func() {
	c.Close()
	return func() { close(t.untracked) }
}

func TestTrackerClosesInsideTrack(t *testing.T) {
	p := newPair(t)
	tr := closingTracker{untracked: make(chan struct{})}
	p.srvCfg.Authorizer = tr
	p.srvCfg.HandshakeTimeout = time.Minute
	p.listen(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if c, err := Dial(ctx, "tcp", p.ln.Addr().String(), p.cliCfg); err == nil {
			c.RecvFrame(nil) // until the server hangs up
			c.Close()
		}
	}()
	srv, err := p.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Handshake(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Handshake deadlocked: Track closed the connection while the handshake held its lock")
	}
	// Close ran inside Track, before Track returned its untrack: untrack still runs, once.
	select {
	case <-tr.untracked:
	case <-time.After(10 * time.Second):
		t.Fatal("untrack never called")
	}
	if err := srv.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on the closed connection: %v", err)
	}
	if e := p.srvEv.next(t); e.Kind != EventHandshakeSucceeded {
		t.Fatalf("event %v", e)
	}
}

// refuse300 returns a server config whose authorizer answers 300 to everyone.
func refuse300(t *testing.T) (*Config, KeyPair) {
	keys := mustPair(t)
	return &Config{KeyPair: keys, Server: true, HandshakeTimeout: time.Minute,
		Authorizer: AuthorizerFunc(func(context.Context, *Request) Result { return Result{Status: StatusTemporary} })}, keys
}

// sendUntilInitiate runs a raw client up to INITIATE against addr and leaves it waiting.
func sendUntilInitiate(t *testing.T, addr string, server PublicKey) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	r := &rawPeer{t: t, conn: nc}
	r.write(zmtp.AppendGreeting(nil, "CURVE", 0, false))
	if _, err := zmtp.ReadGreeting(nc, "CURVE"); err != nil {
		t.Fatal(err)
	}
	kp := mustPair(t)
	hc, err := handshake.NewClient(&handshake.Config{KeyPair: &kp, ServerKey: server})
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := hc.Hello(nil)
	r.writeCommand(hello)
	initiate, err := hc.ReadWelcome(nil, r.readFrame())
	if err != nil {
		t.Fatal(err)
	}
	r.writeCommand(initiate)
	return nc
}

func TestRefusal300EndsWithCtx(t *testing.T) {
	p := newPair(t)
	p.srvCfg, _ = refuse300(t)
	p.srvCfg.KeyPair = p.srvKeys
	p.cliCfg.HandshakeTimeout = time.Minute // the client waits as long as the server may
	p.listen(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if c, err := Dial(ctx, "tcp", p.ln.Addr().String(), p.cliCfg); err == nil {
			c.Close()
		}
	}()
	srv, err := p.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = srv.Handshake(ctx)
	var ae *handshake.AuthError
	if !errors.As(err, &ae) || ae.Status != StatusTemporary {
		t.Fatalf("handshake: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the 300 linger outlived ctx by far: %v", d)
	}
}

func TestTransportCloseDuring300(t *testing.T) {
	cfg, keys := refuse300(t)
	l, err := curveTransport{network: "tcp"}.Listen(WithConfig(context.Background(), cfg), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nc := sendUntilInitiate(t, l.Addr().String(), keys.Public)
	// The server has decided once it has read INITIATE; wait until it has (it says nothing
	// after a 300, so a read here times out while it lingers).
	nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	if _, err := nc.Read(b[:]); !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
		t.Fatalf("the server spoke after a 300: %v", err)
	}
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for the 300 linger (a minute) instead of ending it")
	}
	// The client sees the connection end.
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(b[:]); isTimeout(err) {
		t.Fatal("the lingering connection was not closed")
	}
}

func TestReadDeadlineBoundsHandshakeOfRecv(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	silent := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			silent <- c // never says anything
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case c := <-silent:
			c.Close()
		default:
		}
	}()
	srv := mustPair(t)
	c := Client(nc, &Config{KeyPair: mustPair(t), ServerKey: srv.Public, HandshakeTimeout: time.Minute})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	done := make(chan error, 1)
	go func() { _, _, err := c.RecvFrame(nil); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("received from a silent peer")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the read deadline did not bound the handshake the receive started")
	}
}

// An ERROR whose reason is not a ZAP status is no ZMQ_EVENT_HANDSHAKE_FAILED_AUTH (libzmq
// reports an authentication failure only for 300, 400 and 500).
func TestErrorReasonNotZAPStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		nc.Write(zmtp.AppendGreeting(nil, "CURVE", 0, true))
		if _, err := zmtp.ReadGreeting(nc, "CURVE"); err != nil {
			return
		}
		var hello [2 + 200]byte
		if _, err := io.ReadFull(nc, hello[:]); err != nil {
			return
		}
		body := append([]byte("\x05ERROR\x04nope"), nil...)
		nc.Write(append(zmtp.AppendHeader(nil, zmtp.FlagCommand, len(body)), body...))
		io.Copy(io.Discard, nc)
	}()
	ev := newEventLog()
	srv := mustPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = Dial(ctx, "tcp", ln.Addr().String(), &Config{KeyPair: mustPair(t), ServerKey: srv.Public, Events: ev.add})
	var ae *handshake.AuthError
	if !errors.As(err, &ae) || ae.Status != 0 || ae.Reason != "nope" {
		t.Fatalf("dial: %v", err)
	}
	if e := ev.next(t); e.Kind != EventHandshakeFailedNoDetail || e.Code != 0 {
		t.Fatalf("event %v, want HANDSHAKE_FAILED_NO_DETAIL", e)
	}
}
