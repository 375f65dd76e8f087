package curve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"go.uber.org/goleak"

	"github.com/curvezmq/curvezmq/internal/zmtp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// zmq4 v0.17.0's PUB socket never stops its writer: pubSocket.Close does not call
		// pubMWriter.Close. That goroutine is zmq4's, not ours.
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
		// zmq4 v0.17.0's REP reader blocks for ever sending to its 10-slot queue when the
		// socket closes with that queue full (repReader.listen does not select on its
		// context there), as after TestTransportStalledPeer's backlog. Also zmq4's.
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*repReader).listen"))
}

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// checkNoLeaks runs f and checks that no file descriptor is left open afterwards.
func checkNoLeaks(t *testing.T, f func()) {
	t.Helper()
	// The runtime opens its network poller's descriptors on first use: count after.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	before := openFDs(t)
	f()
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // bounded poll for closes in flight
	}
	if after := openFDs(t); after > before {
		t.Fatalf("%d file descriptors left open", after-before)
	}
}

type zpair struct {
	srv, cli KeyPair
	srvCfg   *Config
	cliCfg   *Config
}

func newZPair(t testing.TB) *zpair {
	z := &zpair{srv: mustPair(t), cli: mustPair(t)}
	z.srvCfg = &Config{KeyPair: z.srv, Server: true, Authorizer: AllowKeys(z.cli.Public), HandshakeTimeout: 3 * time.Second}
	z.cliCfg = &Config{KeyPair: z.cli, ServerKey: z.srv.Public, HandshakeTimeout: 3 * time.Second}
	return z
}

func (z *zpair) server(f func(context.Context, ...zmq4.Option) zmq4.Socket, opts ...zmq4.Option) zmq4.Socket {
	return f(WithConfig(context.Background(), z.srvCfg), opts...)
}

func (z *zpair) client(f func(context.Context, ...zmq4.Option) zmq4.Socket, opts ...zmq4.Option) zmq4.Socket {
	return f(WithConfig(context.Background(), z.cliCfg), opts...)
}

// recv is Recv bounded by a timeout (zmq4's Recv has none): it closes the socket on
// timeout, which makes Recv return.
func recv(t testing.TB, s zmq4.Socket) zmq4.Msg {
	t.Helper()
	type result struct {
		m   zmq4.Msg
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := s.Recv(); ch <- result{m, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.m
	case <-time.After(10 * time.Second):
		s.Close()
		<-ch
		t.Fatal("Recv timed out")
	}
	return zmq4.Msg{}
}

func frames(m zmq4.Msg) string {
	var parts []string
	for _, f := range m.Frames {
		parts = append(parts, string(f))
	}
	return strings.Join(parts, "|")
}

func TestTransportSocketPairs(t *testing.T) {
	cases := []struct {
		name           string
		server, client func(context.Context, ...zmq4.Option) zmq4.Socket
		run            func(t *testing.T, srv, cli zmq4.Socket)
	}{
		{"REQ/REP", zmq4.NewRep, zmq4.NewReq, func(t *testing.T, srv, cli zmq4.Socket) {
			for i := 0; i < 3; i++ {
				cli.Send(zmq4.NewMsgFrom([]byte(fmt.Sprint("q", i)), []byte("part2")))
				if got := frames(recv(t, srv)); got != fmt.Sprint("q", i, "|part2") {
					t.Fatalf("server got %q", got)
				}
				srv.Send(zmq4.NewMsgString(fmt.Sprint("a", i)))
				if got := frames(recv(t, cli)); got != fmt.Sprint("a", i) {
					t.Fatalf("client got %q", got)
				}
			}
		}},
		{"PUB/SUB", zmq4.NewPub, zmq4.NewSub, func(t *testing.T, srv, cli zmq4.Socket) {
			if err := cli.SetOption(zmq4.OptionSubscribe, "A"); err != nil {
				t.Fatal(err)
			}
			// The subscription travels asynchronously: publish until it takes (bounded).
			got := make(chan zmq4.Msg, 100)
			go func() {
				for {
					m, err := cli.Recv()
					if err != nil {
						close(got)
						return
					}
					got <- m
				}
			}()
			var first zmq4.Msg
			for i := 0; i < 200 && first.Frames == nil; i++ {
				srv.Send(zmq4.NewMsgFrom([]byte("B"), []byte("not for you")))
				srv.Send(zmq4.NewMsgFrom([]byte("A"), []byte("warmup")))
				select {
				case first = <-got:
				case <-time.After(50 * time.Millisecond):
				}
			}
			if frames(first) != "A|warmup" {
				t.Fatalf("first message %q", frames(first))
			}
			srv.Send(zmq4.NewMsgFrom([]byte("B"), []byte("filtered")))
			srv.Send(zmq4.NewMsgFrom([]byte("A"), []byte("last")))
			for {
				select {
				case m := <-got:
					if f := frames(m); f == "A|last" {
						return
					} else if f != "A|warmup" {
						t.Fatalf("got %q", f)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("timeout")
				}
			}
		}},
		{"DEALER/ROUTER", zmq4.NewRouter, zmq4.NewDealer, func(t *testing.T, srv, cli zmq4.Socket) {
			cli.Send(zmq4.NewMsgFrom([]byte("hello")))
			m := recv(t, srv)
			if len(m.Frames) != 2 || string(m.Frames[0]) != "dealer-1" || string(m.Frames[1]) != "hello" {
				t.Fatalf("router got %q", m.Frames)
			}
			srv.Send(zmq4.NewMsgFrom([]byte("dealer-1"), []byte("back")))
			if got := frames(recv(t, cli)); got != "back" {
				t.Fatalf("dealer got %q", got)
			}
		}},
		{"PUSH/PULL", zmq4.NewPull, zmq4.NewPush, func(t *testing.T, srv, cli zmq4.Socket) {
			go func() {
				for i := 0; i < 100; i++ {
					cli.Send(zmq4.NewMsgString(fmt.Sprint(i)))
				}
			}()
			for i := 0; i < 100; i++ {
				if got := frames(recv(t, srv)); got != fmt.Sprint(i) {
					t.Fatalf("got %q, want %d", got, i)
				}
			}
		}},
		{"PAIR", zmq4.NewPair, zmq4.NewPair, func(t *testing.T, srv, cli zmq4.Socket) {
			cli.Send(zmq4.NewMsgString("to server"))
			if got := frames(recv(t, srv)); got != "to server" {
				t.Fatal(got)
			}
			srv.Send(zmq4.NewMsgString("to client"))
			if got := frames(recv(t, cli)); got != "to client" {
				t.Fatal(got)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkNoLeaks(t, func() {
				z := newZPair(t)
				var authed atomic.Int32
				z.srvCfg.OnAuthenticated = func(p Peer) {
					if p.Key == z.cli.Public && p.UserID == z.cli.Public.String() {
						authed.Add(1)
					}
				}
				srv := z.server(c.server)
				defer srv.Close()
				if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				var opts []zmq4.Option
				if c.name == "DEALER/ROUTER" {
					opts = append(opts, zmq4.WithID(zmq4.SocketIdentity("dealer-1")))
				}
				cli := z.client(c.client, opts...)
				defer cli.Close()
				if err := cli.Dial("curve://" + srv.Addr().String()); err != nil {
					t.Fatal(err)
				}
				c.run(t, srv, cli)
				if authed.Load() != 1 {
					t.Fatalf("OnAuthenticated ran %d times", authed.Load())
				}
			})
		})
	}
}

func TestTransportIPC(t *testing.T) {
	z := newZPair(t)
	path := t.TempDir() + "/sock"
	srv := z.server(zmq4.NewRep)
	defer srv.Close()
	if err := srv.Listen("curve+ipc://" + path); err != nil {
		t.Fatal(err)
	}
	cli := z.client(zmq4.NewReq)
	defer cli.Close()
	if err := cli.Dial("curve+ipc://" + path); err != nil {
		t.Fatal(err)
	}
	cli.Send(zmq4.NewMsgString("over ipc"))
	if got := frames(recv(t, srv)); got != "over ipc" {
		t.Fatal(got)
	}
}

func TestTransportRefused(t *testing.T) {
	checkNoLeaks(t, func() {
		z := newZPair(t)
		z.srvCfg.Authorizer = AllowKeys() // nobody
		events := newEventLog()
		z.srvCfg.Events = events.add
		z.srvCfg.OnAuthenticated = func(Peer) { t.Error("a refused client was authenticated") }
		srv := z.server(zmq4.NewRep)
		defer srv.Close()
		if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		cli := z.client(zmq4.NewReq)
		defer cli.Close()
		err := cli.Dial("curve://" + srv.Addr().String())
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Fatalf("Dial: %v", err)
		}
		if e := events.next(t); e.Kind != EventHandshakeFailedAuth || e.Code != 400 {
			t.Fatalf("event %v", e)
		}
	})
}

func TestTransportNoConfig(t *testing.T) {
	s := zmq4.NewRep(context.Background())
	defer s.Close()
	if err := s.Listen("curve://127.0.0.1:0"); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("Listen: %v", err)
	}
	c := zmq4.NewReq(context.Background(), zmq4.WithDialerMaxRetries(0))
	defer c.Close()
	if err := c.Dial("curve://127.0.0.1:1"); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("Dial: %v", err)
	}
}

// TestTransportReconnect: a client whose server restarts with the same keys reconnects by
// itself (the transport redials beneath zmq4, as libzmq's sessions do).
func TestTransportReconnect(t *testing.T) {
	z := newZPair(t)
	events := newEventLog()
	z.cliCfg.Events = events.add
	srv := z.server(zmq4.NewRep)
	if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	cli := z.client(zmq4.NewReq)
	defer cli.Close()
	if err := cli.Dial("curve://" + addr); err != nil {
		t.Fatal(err)
	}
	if e := events.next(t); e.Kind != EventHandshakeSucceeded {
		t.Fatalf("first handshake: %v", e)
	}
	cli.Send(zmq4.NewMsgString("1"))
	recv(t, srv)
	srv.Send(zmq4.NewMsgString("1"))
	recv(t, cli)
	srv.Close()

	srv2 := z.server(zmq4.NewRep)
	defer srv2.Close()
	var err error
	for i := 0; i < 100; i++ { // the port is free again once the old listener is gone
		if err = srv2.Listen("curve://" + addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The client notices the loss on its own and completes a new handshake (an attempt
	// that met the old listener as it closed may fail first; the client retries).
	for i := 0; ; i++ {
		e := events.next(t)
		if e.Kind == EventHandshakeSucceeded {
			break
		}
		if e.Kind != EventHandshakeFailedNoDetail || i == 10 {
			t.Fatalf("reconnection: %v", e)
		}
	}
	cli.Send(zmq4.NewMsgString("2"))
	if got := frames(recv(t, srv2)); got != "2" {
		t.Fatal(got)
	}
	srv2.Send(zmq4.NewMsgString("2"))
	if got := frames(recv(t, cli)); got != "2" {
		t.Fatal(got)
	}
}

// TestTransportHalfOpen: 100 idle connections that never finish a handshake neither
// reach zmq4 nor delay a good client, and are closed at the deadline.
func TestTransportHalfOpen(t *testing.T) {
	checkNoLeaks(t, func() {
		z := newZPair(t)
		z.srvCfg.HandshakeTimeout = time.Second
		srv := z.server(zmq4.NewRep)
		defer srv.Close()
		if err := srv.Listen("curve://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		var idle []net.Conn
		for i := 0; i < 100; i++ {
			nc, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, nc)
		}
		cli := z.client(zmq4.NewReq)
		defer cli.Close()
		start := time.Now()
		if err := cli.Dial("curve://" + srv.Addr().String()); err != nil {
			t.Fatal(err)
		}
		cli.Send(zmq4.NewMsgString("served"))
		if got := frames(recv(t, srv)); got != "served" {
			t.Fatal(got)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Fatalf("the good client waited %v behind idle connections", d)
		}
		for _, nc := range idle {
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [128]byte
			for {
				if _, err := nc.Read(b[:]); err != nil {
					if isTimeout(err) {
						t.Fatal("an idle connection outlived the handshake deadline")
					}
					break
				}
			}
			nc.Close()
		}
	})
}

// TestTransportAbandonedOpen: a connection whose zmq4 NULL handshake never completes is
// closed and wiped at the deadline, on both sides (zmq4 never closes it).
func TestTransportAbandonedOpen(t *testing.T) {
	checkNoLeaks(t, func() {
		z := newZPair(t)
		z.srvCfg.HandshakeTimeout = 500 * time.Millisecond
		z.cliCfg.HandshakeTimeout = 500 * time.Millisecond
		tr := curveTransport{network: "tcp"}
		l, err := tr.Listen(WithConfig(context.Background(), z.srvCfg), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		nc, err := tr.Dial(WithConfig(context.Background(), z.cliCfg), &net.Dialer{}, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Nobody calls Accept and nobody writes the inner greeting.
		zc := nc.(*zconn)
		select {
		case <-zc.expired:
		case <-time.After(5 * time.Second):
			t.Fatal("the abandoned client connection was not closed")
		}
		if !zc.conn().closed.Load() || !zc.conn().hsc.Wiped() {
			t.Fatal("not closed and wiped")
		}
		if _, err := zc.Write(make([]byte, 64)); err == nil {
			t.Fatal("write after expiry")
		}
	})
}

// openZConn drives a transport connection's inner NULL handshake as zmq4 would, with
// socket type typ, and reads what the connection answers.
func openZConn(nc net.Conn, typ string) error {
	meta, _ := Metadata{{Name: "Socket-Type", Value: []byte(typ)}}.Append(nil)
	if _, err := nc.Write(zmtp.AppendGreeting(nil, "NULL", 0, false)); err != nil {
		return err
	}
	if _, err := nc.Write(zmtp.AppendCommand(nil, "READY", meta)); err != nil {
		return err
	}
	var g [zmtp.GreetingSize + 2]byte
	if _, err := io.ReadFull(nc, g[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(nc, make([]byte, g[zmtp.GreetingSize+1]))
	return err
}

// TestTransportCloseWithFullQueue: a connection whose receive queue is full because its
// reader (zmq4) stopped reading still ends its reader goroutine on Close.
func TestTransportCloseWithFullQueue(t *testing.T) {
	z := newZPair(t)
	tr := curveTransport{network: "tcp"}
	l, err := tr.Listen(WithConfig(context.Background(), z.srvCfg), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, err := tr.Dial(WithConfig(context.Background(), z.cliCfg), &net.Dialer{}, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The listener hands a connection over only once the client's INITIATE is in, which
	// the client sends once its inner READY is written: open both sides at once.
	accepted := make(chan net.Conn, 1)
	opened := make(chan error, 1)
	go func() {
		srv, err := l.Accept()
		if err == nil {
			err = openZConn(srv, "PUSH")
		}
		accepted <- srv
		opened <- err
	}()
	if err := openZConn(cli, "PULL"); err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The server sends 8 MiB; the client's zmq4 side never reads.
	frame := zmtp.AppendHeader(nil, 0, 1<<20)
	frame = append(frame, make([]byte, 1<<20)...)
	for i := 0; i < 8; i++ {
		if _, err := srv.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	zc := cli.(*zconn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		zc.rmu.Lock()
		full := zc.pub-zc.rpos >= readQueueMax
		zc.rmu.Unlock()
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the receive queue never filled")
		}
		time.Sleep(10 * time.Millisecond) // bounded poll of the queue's state
	}
	cli.Close()
	select {
	case <-zc.readDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader goroutine outlived Close")
	}
}
