package curve

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
	"io"
)

func mustPair(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// eventLog collects events safely.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
	ch  chan Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 64)} }

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
	select {
	case l.ch <- e:
	default:
	}
}

// next waits (bounded) for the next event.
func (l *eventLog) next(t testing.TB) Event {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return Event{}
}

type pair struct {
	srvKeys, cliKeys KeyPair
	srvCfg, cliCfg   *Config
	srvEv, cliEv     *eventLog
	ln               *Listener
}

func newPair(t testing.TB) *pair {
	p := &pair{srvKeys: mustPair(t), cliKeys: mustPair(t), srvEv: newEventLog(), cliEv: newEventLog()}
	p.srvCfg = &Config{KeyPair: p.srvKeys, SocketType: "ROUTER", Events: p.srvEv.add, HandshakeTimeout: 5 * time.Second}
	p.cliCfg = &Config{KeyPair: p.cliKeys, ServerKey: p.srvKeys.Public, SocketType: "DEALER", Identity: []byte("cli"), Events: p.cliEv.add, HandshakeTimeout: 5 * time.Second}
	return p
}

func (p *pair) listen(t testing.TB) string {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", p.srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// connect returns a connected client and the server's side of it, both handshaken (or the
// errors of each side).
func (p *pair) connect(t testing.TB) (cli, srv *Conn, cerr, serr error) {
	t.Helper()
	if p.ln == nil {
		p.listen(t)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := p.ln.Accept()
		if err != nil {
			serr = err
			return
		}
		srv = s
		serr = s.Handshake(context.Background())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, cerr = Dial(ctx, "tcp", p.ln.Addr().String(), p.cliCfg)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("server side did not finish")
	}
	if cli != nil {
		t.Cleanup(func() { cli.Close() })
	}
	if srv != nil {
		t.Cleanup(func() { srv.Close() })
	}
	return cli, srv, cerr, serr
}

func (p *pair) mustConnect(t testing.TB) (cli, srv *Conn) {
	t.Helper()
	cli, srv, cerr, serr := p.connect(t)
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v; server: %v", cerr, serr)
	}
	return cli, srv
}

// rawPeer speaks the protocol by hand with the handshake and zmtp packages, so tests can
// send what a well-behaved peer never would.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	sess *handshake.Session
}

// dialRaw connects to addr and runs a client handshake with metadata meta.
func dialRaw(t testing.TB, addr string, kp *KeyPair, server PublicKey, meta Metadata) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawPeer{t: t, conn: nc}
	t.Cleanup(func() { nc.Close() })
	r.write(zmtp.AppendGreeting(nil, "CURVE", 0, false))
	if _, err := zmtp.ReadGreeting(nc, "CURVE"); err != nil {
		t.Fatal(err)
	}
	hc, err := handshake.NewClient(&handshake.Config{KeyPair: kp, ServerKey: server, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := hc.Hello(nil)
	r.writeCommand(hello)
	welcome := r.readFrame()
	initiate, err := hc.ReadWelcome(nil, welcome)
	if err != nil {
		t.Fatal(err)
	}
	r.writeCommand(initiate)
	sess, err := hc.ReadReady(r.readFrame())
	if err != nil {
		t.Fatal(err)
	}
	r.sess = sess
	return r
}

func (r *rawPeer) write(b []byte) {
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawPeer) writeCommand(body []byte) {
	r.write(append(zmtp.AppendHeader(nil, zmtp.FlagCommand, len(body)), body...))
}

// sendMessage seals payload with inner flags and sends it in a frame with outer flags.
func (r *rawPeer) sendMessage(outer, inner byte, payload []byte) {
	body, err := r.sess.Seal(nil, inner, payload)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(append(zmtp.AppendHeader(nil, outer, len(body)), body...))
}

// readFrame reads one frame body, or returns nil at EOF.
func (r *rawPeer) readFrame() []byte {
	b, err := r.tryReadFrame()
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *rawPeer) tryReadFrame() ([]byte, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r.conn, hdr[:2]); err != nil {
		return nil, err
	}
	n := 2
	if hdr[0]&zmtp.FlagLong != 0 {
		if _, err := io.ReadFull(r.conn, hdr[2:9]); err != nil {
			return nil, err
		}
		n = 9
	}
	_, size, _, err := zmtp.ParseHeader(hdr[:n], 1<<30)
	if err != nil {
		return nil, err
	}
	body := make([]byte, size)
	_, err = io.ReadFull(r.conn, body)
	return body, err
}

// recvMessage reads and opens one MESSAGE.
func (r *rawPeer) recvMessage() (byte, []byte) {
	flags, p, err := r.sess.OpenMessage(r.readFrame())
	if err != nil {
		r.t.Fatal(err)
	}
	return flags, p
}

// expectClosed waits (bounded by the connection deadline) for the peer to close.
func (r *rawPeer) expectClosed() {
	r.t.Helper()
	for i := 0; i < 1000; i++ {
		if _, err := r.tryReadFrame(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatal("connection still open")
			}
			return
		}
	}
	r.t.Fatal("peer kept sending")
}
