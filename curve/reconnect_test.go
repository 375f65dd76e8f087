package curve

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// rawServer is a CURVE server made with Listen, standing in for a peer socket of type typ
// so that a test decides frame by frame what reaches the zmq4 side and when a connection
// breaks.
func rawServer(t *testing.T, z *zpair, typ string) *Listener {
	t.Helper()
	cfg := *z.srvCfg
	cfg.SocketType = typ
	ln, err := Listen("tcp", "127.0.0.1:0", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptConn starts accepting one connection on ln and completing its handshake (the
// client's Dial needs the server's WELCOME); the function it returns waits for that
// connection, at most 10 s.
func acceptConn(t *testing.T, ln *Listener) func() *Conn {
	t.Helper()
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.Handshake(context.Background())
		}
		ch <- result{c, err}
	}()
	return func() *Conn {
		t.Helper()
		select {
		case r := <-ch:
			if r.c != nil {
				t.Cleanup(func() { r.c.Close() })
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.c
		case <-time.After(10 * time.Second):
			ln.Close()
			t.Fatal("no connection within 10 s")
		}
		return nil
	}
}

// dialedPull returns a raw PUSH server, a zmq4 PULL socket dialed to it and the server's
// side of that connection; all are closed with the test.
func dialedPull(t *testing.T) (*Listener, zmq4.Socket, *Conn) {
	t.Helper()
	z := newZPair(t)
	ln := rawServer(t, z, "PUSH")
	cli := z.client(zmq4.NewPull)
	t.Cleanup(func() { cli.Close() })
	accept := acceptConn(t, ln)
	if err := cli.Dial("curve://" + ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	return ln, cli, accept()
}

// TestTransportReconnectMidMessage: when the connection breaks after the first frames of
// a message arrived, zmq4 on the dial side never sees them, whether or not it was reading
// at the time: it gets the messages of the new connection whole, and only those.
func TestTransportReconnectMidMessage(t *testing.T) {
	ln, cli, c1 := dialedPull(t)
	if err := c1.Send([]byte("whole")); err != nil {
		t.Fatal(err)
	}
	if got := frames(recv(t, cli)); got != "whole" {
		t.Fatalf("first message: %q", got)
	}
	// zmq4 is reading again (its PULL reader always is) when the first half of a message
	// arrives and the connection breaks; the new connection is slow to come.
	if err := c1.SendFrame([]byte("cut-1"), true); err != nil {
		t.Fatal(err)
	}
	if err := c1.SendFrame([]byte("cut-2"), true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the frames reach the client's queue
	c1.Close()
	time.Sleep(200 * time.Millisecond) // zmq4 reads while the client redials
	c2 := acceptConn(t, ln)()
	if err := c2.Send([]byte("new-1"), []byte("new-2")); err != nil {
		t.Fatal(err)
	}
	if got := frames(recv(t, cli)); got != "new-1|new-2" {
		t.Fatalf("after the reconnection zmq4 got %q, want new-1|new-2", got)
	}
}

// TestTransportReconnectMidSend: when the connection is replaced between two of zmq4's
// writes within one message, the rest of that message is dropped rather than sent alone
// as a message of its own on the new connection.
func TestTransportReconnectMidSend(t *testing.T) {
	z := newZPair(t)
	ln := rawServer(t, z, "PULL")
	accept := acceptConn(t, ln)
	nc, err := curveTransport{network: "tcp"}.Dial(WithConfig(context.Background(), z.cliCfg), &net.Dialer{}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	zc := nc.(*zconn)
	if err := openZConn(nc, "PUSH"); err != nil {
		t.Fatal(err)
	}
	c1 := accept()
	frame := func(flags byte, s string) []byte {
		return append(zmtp.AppendHeader(nil, flags, len(s)), s...)
	}
	// The first frame of a two-frame message goes out; then the server drops the
	// connection, and the client's reader replaces it before zmq4 writes the last frame.
	if _, err := nc.Write(frame(zmtp.FlagMore, "head")); err != nil {
		t.Fatal(err)
	}
	c1.SetReadDeadline(time.Now().Add(10 * time.Second))
	if f, more, err := c1.RecvFrame(nil); err != nil || !more || string(f) != "head" {
		t.Fatalf("first frame: %q, more %v, %v", f, more, err)
	}
	accept = acceptConn(t, ln)
	c1.Close()
	c2 := accept()
	deadline := time.Now().Add(10 * time.Second)
	for _, gen := zc.current(); gen == 0; _, gen = zc.current() {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect")
		}
		time.Sleep(10 * time.Millisecond) // bounded poll for the new generation
	}
	if _, err := nc.Write(frame(0, "tail")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame(0, "next")); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := c2.Recv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0]) != "next" {
		t.Fatalf("the new connection got %q first, want [next]", got)
	}
}
