package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
)

// handshakeWait bounds a handshake, ours or a peer's.
const handshakeWait = 10 * time.Second

func newKeyPair(t testing.TB) curve.KeyPair {
	t.Helper()
	kp, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// z85Secret returns the secret key of kp as Z85 text, for a peer's command line.
func z85Secret(kp curve.KeyPair) string { return kp.Secret.UnsafeZ85() }

// allowDir writes a pyzmq public certificate (NAME.key, as Cylc's client_public_keys
// holds them) for each key into a new directory and returns the directory.
func allowDir(t testing.TB, keys ...curve.PublicKey) string {
	t.Helper()
	dir := t.TempDir()
	for i, k := range keys {
		name := filepath.Join(dir, "client_"+strconv.Itoa(i)+".key")
		if err := os.WriteFile(name, keystore.PublicCertificate(k, time.Now()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startServerPeer starts a pyzmq CURVE server of sockType with key pair srv, admitting
// (through its ZAP authenticator) exactly the keys in allow, and returns it with its
// address.
func startServerPeer(t testing.TB, sockType string, srv curve.KeyPair, allow []curve.PublicKey, extra ...string) (*peer, string) {
	t.Helper()
	args := append([]string{"--type=" + sockType, "--secret=" + z85Secret(srv), "--allow-dir=" + allowDir(t, allow...)}, extra...)
	p := startPeer(t, "server.py", args...)
	return p, "127.0.0.1:" + strconv.Itoa(p.ready())
}

// startClientPeer starts a pyzmq CURVE client of sockType with key pair cli, connecting
// to addr with server key srv.
func startClientPeer(t testing.TB, sockType, addr string, srv curve.PublicKey, cli curve.KeyPair, extra ...string) *peer {
	t.Helper()
	args := append([]string{"--type=" + sockType, "--connect=tcp://" + addr,
		"--server-key=" + srv.String(), "--public=" + cli.Public.String(), "--secret=" + z85Secret(cli)}, extra...)
	p := startPeer(t, "client.py", args...)
	p.ready()
	return p
}

// eventLog collects one side's handshake events (Config.Events).
type eventLog struct{ ch chan curve.Event }

func newEventLog() *eventLog { return &eventLog{ch: make(chan curve.Event, 1024)} }

func (l *eventLog) add(e curve.Event) {
	select {
	case l.ch <- e:
	default: // a peer reconnecting for ever must not block the handshake
	}
}

// next returns the next event, waiting at most eventWait.
func (l *eventLog) next(t testing.TB) curve.Event {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(eventWait):
		t.Fatalf("no handshake event within %v", eventWait)
		return curve.Event{}
	}
}

// goServer is a curve.Listener on 127.0.0.1 whose connections complete their
// handshakes in the background; the successful ones are handed out by accept.
type goServer struct {
	ln       *curve.Listener
	addr     string
	conns    chan *curve.Conn
	accepted atomic.Int64
}

func startGoServer(t testing.TB, cfg *curve.Config) *goServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &goServer{
		ln:    curve.NewListener(countingListener{inner}, cfg),
		addr:  inner.Addr().String(),
		conns: make(chan *curve.Conn, 64),
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []*curve.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			all = append(all, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), handshakeWait)
				defer cancel()
				if c.Handshake(ctx) == nil {
					select {
					case s.conns <- c:
					default:
						c.Close()
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		s.ln.Close()
		mu.Lock()
		for _, c := range all {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// accept returns the next connection whose handshake succeeded, waiting at most
// handshakeWait.
func (s *goServer) accept(t testing.TB) *curve.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(handshakeWait):
		t.Fatalf("no successful handshake on %s within %v", s.addr, handshakeWait)
		return nil
	}
}

// countingListener wraps each accepted connection in a countingConn.
type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c}, nil
}

// countingConn counts the bytes that cross a connection in each direction: between two
// messages, only heartbeats do.
type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// CloseWrite keeps the half-close that curve.Conn uses after sending ERROR.
func (c *countingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// counters returns the countingConn under c.
func counters(t testing.TB, c *curve.Conn) *countingConn {
	t.Helper()
	cc, ok := c.NetConn().(*countingConn)
	if !ok {
		t.Fatalf("connection %v is not counted", c)
	}
	return cc
}

// dialCounted is curve.Dial over a countingConn.
func dialCounted(t testing.TB, addr string, cfg *curve.Config) *curve.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeWait)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := curve.Client(&countingConn{Conn: nc}, cfg)
	if err := c.Handshake(ctx); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial is curve.Dial bounded by handshakeWait; the connection is closed at the end of the
// test.
func dial(t testing.TB, addr string, cfg *curve.Config) (*curve.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeWait)
	defer cancel()
	c, err := curve.Dial(ctx, "tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// recvMsg receives one message on c within replyWait.
func recvMsg(t testing.TB, c *curve.Conn) [][]byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(replyWait))
	defer c.SetReadDeadline(time.Time{})
	m, err := c.Recv(nil)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return m
}

func send(t testing.TB, c *curve.Conn, m [][]byte) {
	t.Helper()
	if err := c.Send(m...); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// msg makes a message from text frames.
func msg(parts ...string) [][]byte {
	m := make([][]byte, len(parts))
	for i, p := range parts {
		m[i] = []byte(p)
	}
	return m
}

// envelope puts the empty delimiter frame that REQ and REP sockets add and strip in front
// of m: a curve.Conn has no socket semantics, so the tests handle it by hand.
func envelope(m [][]byte) [][]byte { return append([][]byte{{}}, m...) }

// battery is what each direction carries: a small message, a multipart one, empty
// frames, and 1 MiB.
func battery() [][][]byte {
	return [][][]byte{
		msg("hello"),
		msg("a", "bb", "ccc", "dddd"),
		msg(""),
		msg("", "x", "", ""),
		{pseudoRandom("1 MiB", 1<<20)},
	}
}

// numbered returns n small messages "prefix 0", "prefix 1", ...
func numbered(prefix string, n int) [][][]byte {
	out := make([][][]byte, n)
	for i := range out {
		out[i] = msg(fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

// pseudoRandom returns n bytes of SHA-256 in counter mode seeded with seed.
func pseudoRandom(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	s := sha256.Sum256([]byte(seed))
	for i := uint64(0); len(out) < n; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(s[:], i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

// sameMsg reports whether two messages have the same frames.
func sameMsg(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// describe prints a message briefly, for failures.
func describe(m [][]byte) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, f := range m {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(f) > 32 {
			fmt.Fprintf(&b, "%q... (%d bytes)", f[:32], len(f))
		} else {
			fmt.Fprintf(&b, "%q", f)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func wantMsg(t testing.TB, what string, got, want [][]byte) {
	t.Helper()
	if !sameMsg(got, want) {
		t.Fatalf("%s: got %s, want %s", what, describe(got), describe(want))
	}
}
