package curve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// What a peer cannot do to a server: stall its sends by not reading (SendTimeout), make a
// zmq4 socket hold an unbounded message (MaxMessageSize bounds the whole message).

// dialAs connects a curve.Conn to a zmq4 socket at addr with the pair's client keys, as a
// peer of socket type typ; it is closed with the test.
func (z *zpair) dialAs(t *testing.T, typ, addr string) *Conn {
	t.Helper()
	cfg := *z.cliCfg
	cfg.SocketType = typ
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", addr, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSendTimeout: a send to a peer that reads nothing fails once it has waited
// SendTimeout for room, with an error wrapping os.ErrDeadlineExceeded.
func TestSendTimeout(t *testing.T) {
	p := newPair(t)
	p.cliCfg.SendTimeout = 200 * time.Millisecond
	cli, _ := p.mustConnect(t) // the server never reads
	chunk := make([]byte, 64<<10)
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < 1<<14; i++ { // 1 GiB: far beyond any socket buffer
			if err := cli.Send(chunk); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "took no data") {
			t.Fatalf("send error %v, want the send timeout", err)
		}
	case <-time.After(20 * time.Second):
		cli.Close()
		<-errc
		t.Fatal("a send to a peer that reads nothing never failed")
	}
	if err := cli.Send([]byte("x")); err == nil {
		t.Fatal("the connection still sends after its send timeout")
	}
}

// TestTransportStalledPeer: on a zmq4 REP server with a SendTimeout, a client that pipelines
// requests and never reads the replies loses its connection instead of stalling the
// replies to every other client (zmq4 writes to all of them from one goroutine).
func TestTransportStalledPeer(t *testing.T) {
	z := newZPair(t)
	z.srvCfg.SendTimeout = 300 * time.Millisecond
	srv := z.server(zmq4.NewRep)
	defer srv.Close()
	if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	// The server answers every request with 64 KiB, and counts them.
	served := make(chan struct{})
	var answered atomic.Int64
	go func() {
		defer close(served)
		big := make([]byte, 64<<10)
		for {
			m, err := srv.Recv()
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return
				}
				continue
			}
			answered.Add(1)
			reply := big
			if frames(m) == "ping" {
				reply = []byte("pong")
			}
			srv.Send(zmq4.NewMsg(reply))
		}
	}()
	bad := z.dialAs(t, "REQ", srv.Addr().String())
	defer bad.Close() // before srv.Close: a server stalled on it would not close
	go func() {
		for i := 0; i < 2000; i++ { // 128 MiB of replies it will never read
			if bad.Send([]byte{}, []byte("more")) != nil {
				return
			}
		}
	}()
	// 300 replies (19 MiB) are more than the write buffer and both sockets' buffers hold:
	// once the server has answered that many, it has met the stall, and got past it. (It
	// never does without the send timeout: then the good client's ping below fails.)
	for deadline := time.Now().Add(10 * time.Second); answered.Load() < 300 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // bounded poll of the server's count
	}
	good := z.client(zmq4.NewReq)
	defer good.Close()
	if err := good.Dial("curve://" + srv.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := good.Send(zmq4.NewMsgString("ping")); err != nil {
		t.Fatal(err)
	}
	if got := frames(recv(t, good)); got != "pong" {
		t.Fatalf("good client got %q", got)
	}
	srv.Close()
	<-served
}

// TestTransportMessageCap: a zmq4 socket refuses a message whose frames together exceed
// MaxMessageSize, though each frame is within it: the sender loses its connection and
// the socket goes on serving others.
func TestTransportMessageCap(t *testing.T) {
	z := newZPair(t)
	z.srvCfg.MaxMessageSize = 1 << 20
	srv := z.server(zmq4.NewPull)
	defer srv.Close()
	if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	bad := z.dialAs(t, "PUSH", srv.Addr().String())
	half := make([]byte, 600<<10)
	if err := bad.Send(half, half); err != nil { // its last frame crosses the cap
		t.Fatal(err)
	}
	bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bad.Recv(nil); err == nil || isTimeout(err) {
		t.Fatalf("the sender of a 1.2 MiB message kept its connection: %v", err)
	}
	ok := z.dialAs(t, "PUSH", srv.Addr().String())
	if err := ok.Send([]byte("small"), half); err != nil {
		t.Fatal(err)
	}
	if err := ok.Send(make([]byte, 1<<20)); err != nil { // exactly the cap
		t.Fatal(err)
	}
	// zmq4's PULL hands its Recv the error of the dropped connection first.
	got := make(chan zmq4.Msg, 1)
	go func() {
		for i := 0; i < 3; i++ {
			if m, err := srv.Recv(); err == nil {
				got <- m
				return
			}
		}
		close(got)
	}()
	select {
	case m := <-got:
		if len(m.Frames) != 2 || string(m.Frames[0]) != "small" {
			t.Fatalf("got %d frames", len(m.Frames))
		}
		if m := recv(t, srv); len(m.Frames) != 1 || len(m.Frames[0]) != 1<<20 {
			t.Fatalf("a message of exactly MaxMessageSize: %d frames", len(m.Frames))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the socket served no one after dropping the oversized sender")
	}
}

// throttled is a connection whose reads take at most 32 KiB every 10 ms: a peer that
// keeps taking data, slowly (about 3 MB/s).
type throttled struct{ net.Conn }

func (t throttled) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return t.Conn.Read(p[:min(len(p), 32<<10)])
}

// TestSendTimeoutSlowPeer: a peer that keeps taking data, however slowly, is not dropped
// by SendTimeout, even with far more queued than it takes within the timeout. The
// connection's kernel buffers are made small, so the sender sees the peer's pace.
func TestSendTimeoutSlowPeer(t *testing.T) {
	p := newPair(t)
	p.cliCfg.SendTimeout = time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	a.(*net.TCPConn).SetWriteBuffer(32 << 10)
	b.(*net.TCPConn).SetReadBuffer(32 << 10)
	cli, srv := Client(a, p.cliCfg), Server(throttled{b}, p.srvCfg)
	defer cli.Close()
	defer srv.Close()
	hs := make(chan error, 1)
	go func() { hs <- srv.Handshake(context.Background()) }()
	if err := cli.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	// Beyond twice the 4 MiB write buffer, so that sends wait for the writer: about 3 s at
	// the peer's pace.
	const total = 10 << 20
	received := make(chan error, 1)
	go func() {
		n := 0
		var buf []byte
		for n < total {
			f, _, err := srv.RecvFrame(buf[:0])
			if err != nil {
				received <- fmt.Errorf("after %d bytes: %w", n, err)
				return
			}
			buf, n = f, n+len(f)
		}
		received <- nil
	}()
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < total; sent += len(chunk) {
		if err := cli.Send(chunk); err != nil {
			t.Fatalf("after %d MiB: %v", sent>>20, err)
		}
	}
	select {
	case err := <-received:
		if err != nil {
			t.Fatalf("the peer's receive failed %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the peer stopped receiving")
	}
}

// TestSubscriptionInsideMessage: a peer that sends a subscription between the frames of a
// message loses its connection, and zmq4 on the dial side never sees the cut message: it
// gets the new connection's messages whole.
func TestSubscriptionInsideMessage(t *testing.T) {
	ln, cli, c1 := dialedPull(t)
	accept := acceptConn(t, ln) // the reconnection
	if err := c1.SendFrame([]byte("head"), true); err != nil {
		t.Fatal(err)
	}
	c1.wmu.Lock()
	err := c1.queueLocked(handshake.MessageCommand, zmtp.AppendSubscription(nil, true, []byte("topic"), true), true)
	c1.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.SendFrame([]byte("tail"), false); err != nil {
		t.Fatal(err)
	}
	c2 := accept()
	if err := c2.Send([]byte("whole")); err != nil {
		t.Fatal(err)
	}
	if got := frames(recv(t, cli)); got != "whole" {
		t.Fatalf("zmq4 got %q, want whole", got)
	}
}
