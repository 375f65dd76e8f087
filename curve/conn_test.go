package curve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

func TestRequestReply(t *testing.T) {
	p := newPair(t)
	p.srvCfg.Authorizer = AllowKeys(p.cliKeys.Public)
	cli, srv := p.mustConnect(t)
	if srv.PeerPublicKey() != p.cliKeys.Public || cli.PeerPublicKey() != p.srvKeys.Public {
		t.Fatal("peer keys")
	}
	if srv.UserID() != p.cliKeys.Public.String() {
		t.Fatalf("User-Id %q", srv.UserID())
	}
	if id, _ := srv.PeerMetadata().Get("Identity"); string(id) != "cli" {
		t.Fatalf("Identity %q", id)
	}
	if st, _ := cli.PeerMetadata().Get("Socket-Type"); string(st) != "ROUTER" {
		t.Fatalf("Socket-Type %q", st)
	}
	if e := p.srvEv.next(t); e.Kind != EventHandshakeSucceeded || e.PeerKey != p.cliKeys.Public {
		t.Fatalf("server event %v", e)
	}
	if e := p.cliEv.next(t); e.Kind != EventHandshakeSucceeded {
		t.Fatalf("client event %v", e)
	}
	// Multipart with empty frames, both ways.
	msg := [][]byte{[]byte("a"), nil, []byte("third part"), {}}
	if err := cli.Send(msg...); err != nil {
		t.Fatal(err)
	}
	got, err := srv.Recv(nil)
	if err != nil || len(got) != 4 || string(got[0]) != "a" || len(got[1]) != 0 || string(got[2]) != "third part" || len(got[3]) != 0 {
		t.Fatalf("%q %v", got, err)
	}
	// A 1 MiB message.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	if err := srv.Send(big); err != nil {
		t.Fatal(err)
	}
	f, more, err := cli.RecvFrame(nil)
	if err != nil || more || !bytes.Equal(f, big) {
		t.Fatalf("1 MiB: %d bytes, more %v, %v", len(f), more, err)
	}
	// 10,000 messages in a row, with reused buffers.
	go func() {
		for i := 0; i < 10000; i++ {
			if err := cli.Send([]byte(fmt.Sprint(i)), []byte("x")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf [][]byte
	for i := 0; i < 10000; i++ {
		buf, err = srv.Recv(buf)
		if err != nil || len(buf) != 2 || string(buf[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q %v", i, buf, err)
		}
	}
	cli.Close()
	srv.Close()
	if !cli.sess.Wiped() || !srv.sess.Wiped() {
		t.Fatal("Close left session keys")
	}
	if !cli.hsc.Wiped() || !srv.hss.Wiped() {
		t.Fatal("handshake secrets survived")
	}
	if err := cli.Send([]byte("late")); err == nil {
		t.Fatal("Send after Close")
	}
}

func TestRefused(t *testing.T) {
	for _, status := range []int{StatusDenied, StatusInternalError} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			p := newPair(t)
			p.srvCfg.Authorizer = AuthorizerFunc(func(context.Context, *Request) Result { return Result{Status: status} })
			_, srv, cerr, serr := p.connect(t)
			var ae *AuthError
			if !errors.As(cerr, &ae) || ae.Status != status || !errors.Is(cerr, ErrAuth) {
				t.Fatalf("client: %v", cerr)
			}
			if !errors.As(serr, &ae) || ae.Status != status {
				t.Fatalf("server: %v", serr)
			}
			if e := p.srvEv.next(t); e.Kind != EventHandshakeFailedAuth || e.Code != status || e.PeerKey != p.cliKeys.Public {
				t.Fatalf("server event %v", e)
			}
			if e := p.cliEv.next(t); e.Kind != EventHandshakeFailedAuth || e.Code != status {
				t.Fatalf("client event %v", e)
			}
			if !srv.hss.Wiped() {
				t.Fatal("refusal left secrets")
			}
			if srv.PeerPublicKey() != (PublicKey{}) {
				t.Fatal("refused peer reported as authenticated")
			}
		})
	}
	t.Run("300", func(t *testing.T) {
		// 300 closes without ERROR, at the handshake deadline (as libzmq).
		p := newPair(t)
		p.srvCfg.HandshakeTimeout = 500 * time.Millisecond
		p.srvCfg.Authorizer = AuthorizerFunc(func(context.Context, *Request) Result { return Result{Status: StatusTemporary} })
		_, _, cerr, serr := p.connect(t)
		var ae *AuthError
		if !errors.As(serr, &ae) || ae.Status != 300 {
			t.Fatalf("server: %v", serr)
		}
		if cerr == nil || errors.Is(cerr, ErrAuth) {
			t.Fatalf("client should see a closed connection, not ERROR: %v", cerr)
		}
	})
}

func TestWrongServerKey(t *testing.T) {
	p := newPair(t)
	p.cliCfg.ServerKey = mustPair(t).Public
	_, _, cerr, serr := p.connect(t)
	if !errors.Is(cerr, ErrNoWelcome) {
		t.Fatalf("client: %v", cerr)
	}
	var pe *handshake.ProtocolError
	if !errors.As(serr, &pe) || pe.Code != handshake.CodeCryptographic {
		t.Fatalf("server: %v", serr)
	}
	if e := p.srvEv.next(t); e.Kind != EventHandshakeFailedProtocol || e.Code != handshake.CodeCryptographic {
		t.Fatalf("server event %v", e)
	}
}

// TestHandshakeDeadline: a peer that stops mid-handshake is closed at the deadline, and its
// handshake's secrets are wiped; so is one that hangs up mid-handshake.
func TestHandshakeDeadline(t *testing.T) {
	for _, c := range []struct {
		name  string
		send  func(nc net.Conn, server PublicKey)
		event EventKind
	}{
		{"silent", func(net.Conn, PublicKey) {}, EventHandshakeFailedNoDetail},
		{"greeting only", func(nc net.Conn, _ PublicKey) { nc.Write(zmtp.AppendGreeting(nil, "CURVE", 0, false)) }, EventHandshakeFailedNoDetail},
		{"after HELLO", func(nc net.Conn, server PublicKey) {
			nc.Write(zmtp.AppendGreeting(nil, "CURVE", 0, false))
			kp := mustPair(t)
			hc, err := handshake.NewClient(&handshake.Config{KeyPair: &kp, ServerKey: server})
			if err != nil {
				t.Fatal(err)
			}
			hello, _ := hc.Hello(nil)
			nc.Write(append(zmtp.AppendHeader(nil, zmtp.FlagCommand, len(hello)), hello...))
		}, EventHandshakeFailedNoDetail},
		{"EOF", func(nc net.Conn, _ PublicKey) {
			nc.Write(zmtp.AppendGreeting(nil, "CURVE", 0, false))
			nc.(*net.TCPConn).CloseWrite()
		}, EventHandshakeFailedNoDetail},
		{"NULL client", func(nc net.Conn, _ PublicKey) { nc.Write(zmtp.AppendGreeting(nil, "NULL", 0, false)) }, EventHandshakeFailedProtocol},
		{"ZMTP 1.0", func(nc net.Conn, _ PublicKey) { nc.Write([]byte{1, 0}) }, EventHandshakeFailedProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			p.srvCfg.HandshakeTimeout = 300 * time.Millisecond
			addr := p.listen(t)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c.send(nc, p.srvKeys.Public)
			srv, err := p.ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = srv.Handshake(context.Background())
			if err == nil || time.Since(start) > 5*time.Second {
				t.Fatalf("handshake: %v after %v", err, time.Since(start))
			}
			if e := p.srvEv.next(t); e.Kind != c.event {
				t.Fatalf("event %v", e)
			}
			if srv.hss != nil && !srv.hss.Wiped() {
				t.Fatal("secrets survived")
			}
			// The server closed the connection.
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [128]byte
			for {
				if _, err := nc.Read(b[:]); err != nil {
					if isTimeout(err) {
						t.Fatal("server kept the connection")
					}
					break
				}
			}
		})
	}
}
