package curve

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// serveOne accepts one connection on p's listener and returns it handshaken.
func serveOne(t *testing.T, p *pair) chan *Conn {
	ch := make(chan *Conn, 1)
	go func() {
		s, err := p.ln.Accept()
		if err != nil {
			t.Error(err)
			close(ch)
			return
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Handshake(context.Background()); err != nil {
			t.Error(err)
		}
		ch <- s
	}()
	return ch
}

// TestOuterFlagsIgnored: MORE and COMMAND come from the inner flags; outer bits set by other
// implementations (omq.rs sets outer MORE and COMMAND, RFC-literal peers outer COMMAND) do
// not change how a MESSAGE is routed (protocol-anchors §1.9).
func TestOuterFlagsIgnored(t *testing.T) {
	p := newPair(t)
	addr := p.listen(t)
	ch := serveOne(t, p)
	r := dialRaw(t, addr, &p.cliKeys, p.srvKeys.Public, Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}})
	srv := <-ch
	r.sendMessage(zmtp.FlagCommand|zmtp.FlagMore, handshake.MessageMore, []byte("one"))
	r.sendMessage(zmtp.FlagCommand, 0, []byte("two"))
	got, err := srv.Recv(nil)
	if err != nil || len(got) != 2 || string(got[0]) != "one" || string(got[1]) != "two" {
		t.Fatalf("%q %v", got, err)
	}
	// Our MESSAGEs carry outer flags 0x00 (0x02 when long), never MORE or COMMAND.
	srv.Send([]byte("x"), bytes.Repeat([]byte("y"), 300))
	for _, want := range []byte{0x00, 0x02} {
		var hdr [1]byte
		if _, err := r.conn.Read(hdr[:]); err != nil || hdr[0] != want {
			t.Fatalf("outer flags %x, want %x (%v)", hdr[0], want, err)
		}
		var l [8]byte
		size := l[:1]
		if want == 0x02 {
			size = l[:8]
		}
		if _, err := ioFull(r, size); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range size {
			n = n<<8 | int(c)
		}
		body := make([]byte, n)
		if _, err := ioFull(r, body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.sess.OpenMessage(body); err != nil {
			t.Fatal(err)
		}
	}
}

func ioFull(r *rawPeer, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.conn.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestPingPongAndCommands: PINGs are answered with their context (cut to 16 bytes), PONGs
// and unknown commands are dropped, ZMTP 3.1 SUBSCRIBE/CANCEL arrive in the 3.0 form, and a
// PING too short to hold its TTL ends the connection (libzmq 4.3 would echo 16 bytes it
// never received).
func TestPingPongAndCommands(t *testing.T) {
	p := newPair(t)
	addr := p.listen(t)
	ch := serveOne(t, p)
	r := dialRaw(t, addr, &p.cliKeys, p.srvKeys.Public, nil)
	srv := <-ch
	recv := make(chan [][]byte, 8)
	errc := make(chan error, 1)
	go func() {
		var m [][]byte
		for {
			var err error
			m, err = srv.Recv(nil)
			if err != nil {
				errc <- err
				return
			}
			recv <- m
		}
	}()
	r.sendMessage(0, handshake.MessageCommand, []byte("\x04PING\x00\x0actx-abc"))
	if f, b := r.recvMessage(); f != handshake.MessageCommand || string(b) != "\x04PONGctx-abc" {
		t.Fatalf("PONG %x %q", f, b)
	}
	r.sendMessage(0, handshake.MessageCommand, append([]byte("\x04PING\x00\x0a"), bytes.Repeat([]byte("c"), 17)...))
	if _, b := r.recvMessage(); string(b) != "\x04PONG"+strings.Repeat("c", 16) {
		t.Fatalf("PONG %q", b)
	}
	r.sendMessage(0, handshake.MessageCommand, []byte("\x04PONGxyz"))
	r.sendMessage(0, handshake.MessageCommand, []byte("\x05HELLOjunk"))
	r.sendMessage(0, handshake.MessageCommand, []byte("\x09SUBSCRIBEtopicA"))
	r.sendMessage(0, handshake.MessageCommand, []byte("\x06CANCELtopicA"))
	r.sendMessage(0, 0, []byte("data"))
	for _, want := range []string{"\x01topicA", "\x00topicA", "data"} {
		select {
		case m := <-recv:
			if len(m) != 1 || string(m[0]) != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatal("timeout")
		}
	}
	r.sendMessage(0, handshake.MessageCommand, []byte("\x04PING\x00"))
	select {
	case err := <-errc:
		if !errors.Is(err, zmtp.ErrMalformed) {
			t.Fatalf("short PING: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("short PING accepted")
	}
	r.expectClosed()
}

// TestReplayClosesConnection: a replayed MESSAGE kills the session and the connection.
func TestReplayClosesConnection(t *testing.T) {
	p := newPair(t)
	addr := p.listen(t)
	ch := serveOne(t, p)
	r := dialRaw(t, addr, &p.cliKeys, p.srvKeys.Public, nil)
	srv := <-ch
	body, _ := r.sess.Seal(nil, 0, []byte("once"))
	frame := append(zmtp.AppendHeader(nil, 0, len(body)), body...)
	r.write(frame)
	r.write(frame)
	if m, err := srv.Recv(nil); err != nil || string(m[0]) != "once" {
		t.Fatal(m, err)
	}
	_, err := srv.Recv(nil)
	var pe *handshake.ProtocolError
	if !errors.As(err, &pe) || pe.Code != handshake.CodeInvalidSequence {
		t.Fatalf("replay: %v", err)
	}
	r.expectClosed()
	if _, err := srv.Recv(nil); err == nil {
		t.Fatal("dead connection received")
	}
}

// TestMaxMessageSize: a payload of exactly MaxMessageSize passes, one byte more ends the
// connection before anything is allocated for it.
func TestMaxMessageSize(t *testing.T) {
	p := newPair(t)
	p.srvCfg.MaxMessageSize = 1000
	cli, srv := p.mustConnect(t)
	if err := cli.Send(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if f, _, err := srv.RecvFrame(nil); err != nil || len(f) != 1000 {
		t.Fatal(len(f), err)
	}
	cli.Send(make([]byte, 1001))
	if _, _, err := srv.RecvFrame(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1001 bytes: %v", err)
	}
}

// TestHeartbeat: with heartbeats on, an idle connection stays up (PINGs are answered); a
// peer that stops answering is declared dead after the timeout.
func TestHeartbeat(t *testing.T) {
	p := newPair(t)
	p.cliCfg.HeartbeatInterval = 50 * time.Millisecond
	p.cliCfg.HeartbeatTTL = time.Second
	// Idle for several timeouts; a margin of a second and a half per PONG keeps a loaded
	// machine from failing this.
	p.cliCfg.HeartbeatTimeout = 1500 * time.Millisecond
	cli, srv := p.mustConnect(t)
	go func() {
		for {
			if _, err := srv.Recv(nil); err != nil {
				return
			}
		}
	}()
	cli.SetReadDeadline(time.Now().Add(4 * time.Second))
	_, _, err := cli.RecvFrame(nil)
	if !isTimeout(err) || errors.Is(err, ErrHeartbeat) {
		t.Fatalf("idle but alive: %v", err)
	}
	cli.SetReadDeadline(time.Time{})

	// A raw server-side peer that never answers PING.
	p2 := newPair(t)
	p2.cliCfg.HeartbeatInterval = 50 * time.Millisecond
	p2.cliCfg.HeartbeatTimeout = 300 * time.Millisecond
	cli2, srv2 := p2.mustConnect(t)
	_ = srv2 // never reads, so never answers
	start := time.Now()
	_, _, err = cli2.RecvFrame(nil)
	if !errors.Is(err, ErrHeartbeat) || time.Since(start) > 5*time.Second {
		t.Fatalf("dead peer: %v after %v", err, time.Since(start))
	}
}

// TestSteadyStateAllocations: sending and receiving allocate nothing once buffers exist.
func TestSteadyStateAllocations(t *testing.T) {
	p := newPair(t)
	cli, srv := p.mustConnect(t)
	payload := make([]byte, 1024)
	buf := make([]byte, 0, 2048)
	for i := 0; i < 100; i++ { // warm up the buffers
		cli.Send(payload)
		srv.RecvFrame(buf[:0])
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := cli.Send(payload); err != nil {
			t.Fatal(err)
		}
		if _, _, err := srv.RecvFrame(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per message", allocs)
	}
}

// TestSecretsNeverPrinted formats every exported type with every verb, and collects the
// errors, events and log output of a corpus of failing handshakes, and looks for the test
// secrets in Z85, hex and raw form.
func TestSecretsNeverPrinted(t *testing.T) {
	p := newPair(t)
	var logs bytes.Buffer
	logger := log.New(&logs, "", 0)
	record := func(e Event) { logger.Printf("event %v %+v %#v", e, e, e) }
	p.srvCfg.Events, p.cliCfg.Events = record, record
	secrets := [][]byte{p.srvKeys.Secret.UnsafeBytes()[:], p.cliKeys.Secret.UnsafeBytes()[:]}
	cli, srv := p.mustConnect(t)
	values := []any{cli, srv, p.srvCfg, *p.cliCfg, p.srvKeys, &p.cliKeys, p.srvKeys.Secret, p.ln, cli.Peer(), cli.sess, srv.hss, cli.hsc}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			logger.Printf(verb, v)
		}
	}
	// Failing handshakes: refused, wrong server key, bad client key pair, timeouts.
	for i, mutate := range []func(*pair){
		func(p *pair) { p.srvCfg.Authorizer = AllowKeys() },
		func(p *pair) { p.cliCfg.ServerKey = mustPair(t).Public },
		func(p *pair) {
			p.srvCfg.Authorizer = AuthorizerFunc(func(context.Context, *Request) Result { return Result{Status: 500} })
		},
	} {
		q := newPair(t)
		q.srvKeys, q.cliKeys = p.srvKeys, p.cliKeys
		q.srvCfg.KeyPair, q.cliCfg.KeyPair, q.cliCfg.ServerKey = p.srvKeys, p.cliKeys, p.srvKeys.Public
		q.srvCfg.Events, q.cliCfg.Events = record, record
		mutate(q)
		_, _, cerr, serr := q.connect(t)
		logger.Printf("case %d: %v / %v / %+v / %#v", i, cerr, serr, cerr, serr)
	}
	out := logs.String()
	for _, s := range secrets {
		for _, form := range []string{string(s), hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)), z85(s), fmt.Sprint(s)} {
			if i := strings.Index(out, form); i >= 0 {
				t.Fatalf("a secret appears in the output at %d (form %q):\n%s", i, form, out[max(0, i-200):min(len(out), i+200)])
			}
		}
	}
	if !strings.Contains(out, "HANDSHAKE_FAILED_AUTH 400") || !strings.Contains(out, "REDACTED") {
		t.Fatalf("the corpus did not run as intended:\n%s", out)
	}
}

func z85(b []byte) string {
	s, err := ParseSecretKey(b)
	if err != nil {
		panic(err)
	}
	return s.UnsafeZ85()
}

// TestMismatchedKeyPair: a server whose key pair's halves differ is refused at Listen; a
// client's shows up as a failed handshake that names the cause.
func TestMismatchedKeyPair(t *testing.T) {
	p := newPair(t)
	bad := *p.srvCfg
	bad.KeyPair.Public = mustPair(t).Public
	if _, err := Listen("tcp", "127.0.0.1:0", &bad); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Listen: %v", err)
	}
	p.cliCfg.KeyPair.Public = mustPair(t).Public
	_, _, cerr, serr := p.connect(t)
	if cerr == nil || !strings.Contains(cerr.Error(), "our key pair's public key does not match") {
		t.Fatalf("client: %v", cerr)
	}
	var pe *handshake.ProtocolError
	if !errors.As(serr, &pe) || pe.Code != handshake.CodeKeyExchange && pe.Code != handshake.CodeCryptographic {
		t.Fatalf("server: %v", serr)
	}
}

// TestSocketTypes: a pair of socket types that cannot talk is refused (as libzmq's
// check_socket_type); a missing Socket-Type is accepted (as libzmq accepts it).
func TestSocketTypes(t *testing.T) {
	p := newPair(t)
	p.srvCfg.SocketType, p.cliCfg.SocketType = "REP", "PUB"
	_, _, cerr, serr := p.connect(t)
	var pe *handshake.ProtocolError
	if !errors.As(serr, &pe) || pe.Code != handshake.CodeInvalidMetadata || !strings.Contains(serr.Error(), `"PUB" cannot talk to REP`) {
		t.Fatalf("server: %v", serr)
	}
	if cerr == nil {
		t.Fatal("client connected")
	}
	q := newPair(t)
	q.srvCfg.SocketType, q.cliCfg.SocketType = "REP", ""
	q.mustConnect(t)
}
