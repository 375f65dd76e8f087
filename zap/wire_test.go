package zap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

func serveZAP(t testing.TB, a *Authenticator, endpoint string) *WireServer {
	t.Helper()
	w, err := a.ServeZAP(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// zapSocket is a zmq4 socket of kind (zmq4.NewReq, zmq4.NewDealer) connected to w.
func zapSocket(t testing.TB, w *WireServer, kind func(context.Context, ...zmq4.Option) zmq4.Socket) zmq4.Socket {
	t.Helper()
	s := kind(context.Background(), zmq4.WithDialerMaxRetries(0))
	if err := s.Dial(w.Endpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recvZMQ is zmq4's Recv bounded by waitTimeout (the socket is closed on timeout).
func recvZMQ(t testing.TB, s zmq4.Socket) [][]byte {
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
			t.Fatalf("Recv: %v", r.err)
		}
		return r.m.Frames
	case <-time.After(waitTimeout):
		s.Close()
		<-ch
		t.Fatalf("no ZAP reply within %v", waitTimeout)
		return nil
	}
}

// zapRequest builds the frames of a ZAP request as libzmq sends them (after the
// delimiter).
func zapRequest(id, domain, mechanism string, creds ...[]byte) [][]byte {
	return append([][]byte{[]byte("1.0"), []byte(id), []byte(domain), []byte("127.0.0.1"), []byte("IDENT"), []byte(mechanism)}, creds...)
}

func ask(t testing.TB, req zmq4.Socket, frames [][]byte) [][]byte {
	t.Helper()
	if err := req.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return recvZMQ(t, req)
}

// wantReply checks a ZAP reply's six frames.
func wantReply(t testing.TB, got [][]byte, id, status, text, userID string) {
	t.Helper()
	want := []string{"1.0", id, status, text, userID, ""}
	var gotS []string
	for _, f := range got {
		gotS = append(gotS, string(f))
	}
	if !slices.Equal(gotS, want) {
		t.Fatalf("reply %q, want %q", gotS, want)
	}
}

// The ZAP wire protocol: a REQ socket asks about keys and gets the Authenticator's
// decisions, which follow the watched directory.
func TestWireDecisions(t *testing.T) {
	dir := t.TempDir()
	allowed, later := newKey(t), newKey(t)
	writeKey(t, dir, "allowed.key", allowed)
	a := newAuth(t, Config{})
	configure(t, a, dir)
	w := serveZAP(t, a, "tcp://127.0.0.1:0")
	req := zapSocket(t, w, zmq4.NewReq)

	wantReply(t, ask(t, req, zapRequest("1", "", "CURVE", allowed[:])), "1", "200", "OK", allowed.String())
	wantReply(t, ask(t, req, zapRequest("2", "global", "CURVE", allowed[:])), "2", "400", "Unknown domain", "")
	wantReply(t, ask(t, req, zapRequest("3", "*", "CURVE", later[:])), "3", "400", "Unknown key", "")
	writeKey(t, dir, "later.key", later)
	waitStatus(t, a, later, 200)
	wantReply(t, ask(t, req, zapRequest("4", "*", "CURVE", later[:])), "4", "200", "OK", later.String())

	st := a.Stats()
	if st.Allowed != 3 || st.Denied["unknown_key"] != 2 || st.Denied["unknown_domain"] != 1 {
		t.Errorf("stats: allowed %d denied %v", st.Allowed, st.Denied)
	}
}

// Requests are validated as pyzmq's Authenticator validates them.
func TestWireValidation(t *testing.T) {
	a := newAuth(t, Config{})
	if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	w := serveZAP(t, a, "tcp://127.0.0.1:0")
	req := zapSocket(t, w, zmq4.NewReq)
	k := newKey(t)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		status string
		text   string
	}{
		{"not enough frames", [][]byte{[]byte("1.0"), []byte("7"), []byte("*")}, "400", "Not enough frames"},
		{"bad version", append([][]byte{[]byte("2.0")}, zapRequest("8", "", "CURVE", k[:])[1:]...), "400", "Invalid version"},
		{"no credentials", zapRequest("9", "", "CURVE"), "400", "Invalid credentials"},
		{"two credentials", zapRequest("10", "", "CURVE", k[:], k[:]), "400", "Invalid credentials"},
		{"short key", zapRequest("11", "", "CURVE", k[:31]), "400", "Invalid credentials"},
		{"Z85 key", zapRequest("12", "", "CURVE", []byte(k.String())), "400", "Invalid credentials"},
		{"all-zero key", zapRequest("13", "", "CURVE", make([]byte, 32)), "400", "Invalid credentials"},
		{"PLAIN", zapRequest("14", "", "PLAIN", []byte("user"), []byte("pass")), "400", "Unsupported mechanism"},
		{"NULL", zapRequest("15", "", "NULL"), "400", "Unsupported mechanism"},
		{"no mechanism", zapRequest("16", "", ""), "400", "Unsupported mechanism"},
		{"allowed", zapRequest("17", "", "CURVE", k[:]), "200", "OK"},
	} {
		got := ask(t, req, tc.frames)
		user := ""
		if tc.status == "200" {
			user = k.String()
		}
		if len(got) < 2 {
			t.Fatalf("%s: reply %q", tc.name, got)
		}
		wantReply(t, got, string(tc.frames[1]), tc.status, tc.text, user)
	}
}

// A request without a request id gets no reply (as in pyzmq); the connection still
// serves the next request.
func TestWireNoRequestID(t *testing.T) {
	a := newAuth(t, Config{})
	if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	w := serveZAP(t, a, "tcp://127.0.0.1:0")
	dealer := zapSocket(t, w, zmq4.NewDealer)
	k := newKey(t)
	if err := dealer.Send(zmq4.NewMsgFrom([]byte{}, []byte("1.0"))); err != nil {
		t.Fatal(err)
	}
	if err := dealer.Send(zmq4.NewMsgFrom(append([][]byte{{}}, zapRequest("42", "", "CURVE", k[:])...)...)); err != nil {
		t.Fatal(err)
	}
	got := recvZMQ(t, dealer)
	if len(got) != 7 || len(got[0]) != 0 {
		t.Fatalf("reply %q, want the delimiter and six frames", got)
	}
	wantReply(t, got[1:], "42", "200", "OK", k.String())
}

// A callback's temporary failure is a 300 on the wire; with the zauth layout, a
// certificate's metadata comes back in the metadata frame.
func TestWireStatusAndMetadata(t *testing.T) {
	a := newAuth(t, Config{})
	busy := newKey(t)
	err := a.ConfigureCurveCallback("busy", func(context.Context, string, key.PublicKey) (bool, error) {
		return false, ErrTemporary
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := newKey(t)
	writeFile(t, filepath.Join(dir, "alice"), "metadata\n    name = \"alice\"\ncurve\n    public-key = \""+k.String()+"\"\n")
	if err := a.ConfigureCurveDir("certs", dir, LayoutZauth); err != nil {
		t.Fatal(err)
	}
	w := serveZAP(t, a, "ipc://"+filepath.Join(t.TempDir(), "zap.sock"))
	if !strings.HasPrefix(w.Endpoint(), "ipc://") {
		t.Fatalf("endpoint %q", w.Endpoint())
	}
	req := zapSocket(t, w, zmq4.NewReq)
	got := ask(t, req, zapRequest("1", "busy", "CURVE", busy[:]))
	if len(got) != 6 || string(got[2]) != "300" || len(got[4]) != 0 {
		t.Fatalf("temporary failure: reply %q, want status 300 and no user id", got)
	}
	got = ask(t, req, zapRequest("2", "certs", "CURVE", k[:]))
	if len(got) != 6 || string(got[2]) != "200" {
		t.Fatalf("zauth certificate: reply %q", got)
	}
	meta, err := handshake.ParseMetadata(got[5])
	if err != nil {
		t.Fatalf("metadata frame %q: %v", got[5], err)
	}
	if v, ok := meta.Get("name"); !ok || string(v) != "alice" {
		t.Fatalf("metadata %v, want name=alice", meta)
	}
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rawZAP is a hand-driven ZMTP NULL client of a WireServer.
type rawZAP struct {
	c net.Conn
	r *bufio.Reader
}

// dialRaw connects to w as a socketType socket: greetings, then its READY sent; it returns
// the error that ended the greetings, if any.
func dialRaw(t testing.TB, w *WireServer, socketType string) (*rawZAP, error) {
	t.Helper()
	addr := strings.TrimPrefix(w.Endpoint(), "tcp://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitTimeout))
	z := &rawZAP{c: c, r: bufio.NewReader(c)}
	if _, err := c.Write(zmtp.AppendGreeting(nil, "NULL", 1, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := zmtp.ReadGreeting(z.r, "NULL"); err != nil {
		return nil, err
	}
	meta, _ := handshake.Metadata{{Name: "Socket-Type", Value: []byte(socketType)}}.Append(nil)
	if _, err := c.Write(zmtp.AppendCommand(nil, "READY", meta)); err != nil {
		return nil, err
	}
	return z, nil
}

// handshaken connects to w as a socketType socket and reads the server's READY.
func handshaken(t testing.TB, w *WireServer, socketType string) *rawZAP {
	t.Helper()
	z, err := dialRaw(t, w, socketType)
	if err == nil {
		err = z.readReady()
	}
	if err != nil {
		t.Fatalf("handshake as %s: %v", socketType, err)
	}
	return z
}

// readReady reads the server's READY, or reports the error that ended the connection.
func (z *rawZAP) readReady() error {
	var hdr [2]byte
	if _, err := io.ReadFull(z.r, hdr[:]); err != nil {
		return err
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(z.r, body); err != nil {
		return err
	}
	if !zmtp.IsCommand(body, "READY") {
		return fmt.Errorf("got %q, not READY", body)
	}
	return nil
}

// closedByServer checks that the server closes the connection: reading gets EOF (or a
// reset), not a timeout.
func (z *rawZAP) closedByServer(t testing.TB, what string) {
	t.Helper()
	if _, err := io.Copy(io.Discard, z.r); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the server did not close the connection", what)
		}
	}
}

// Every limit holds: an oversized frame, too many frames, a socket type other than REQ
// or DEALER, and connections beyond WireMaxConns are disconnected.
func TestWireLimits(t *testing.T) {
	a := newAuth(t, Config{})
	if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	w := serveZAP(t, a, "tcp://127.0.0.1:0")

	z := handshaken(t, w, "REQ")
	// A frame announcing 2^62 bytes: refused before anything is allocated for it.
	z.c.Write(zmtp.AppendHeader(nil, zmtp.FlagMore, 1<<62))
	z.closedByServer(t, "a huge frame")

	z = handshaken(t, w, "REQ")
	z.c.Write(append(zmtp.AppendHeader(nil, 0, WireMaxFrame+1), make([]byte, WireMaxFrame+1)...))
	z.closedByServer(t, "a frame one byte too large")

	z = handshaken(t, w, "REQ")
	var many []byte
	for range WireMaxFrames + 1 {
		many = zmtp.AppendHeader(many, zmtp.FlagMore, 0)
	}
	z.c.Write(many)
	z.closedByServer(t, "too many frames")

	z = handshaken(t, w, "PUB") // the server's READY comes before it reads ours
	z.closedByServer(t, "a PUB socket")

	// A request still gets its answer on a connection within the limits.
	z = handshaken(t, w, "REQ")
	k := newKey(t)
	msg := append([][]byte{{}}, zapRequest("5", "", "CURVE", k[:])...)
	var req []byte
	for i, f := range msg {
		var flags byte
		if i < len(msg)-1 {
			flags = zmtp.FlagMore
		}
		req = append(zmtp.AppendHeader(req, flags, len(f)), f...)
	}
	z.c.Write(req)
	var reply [][]byte
	for more := true; more; {
		var hdr [2]byte
		if _, err := io.ReadFull(z.r, hdr[:]); err != nil {
			t.Fatalf("reply: %v", err)
		}
		f := make([]byte, hdr[1])
		if _, err := io.ReadFull(z.r, f); err != nil {
			t.Fatalf("reply: %v", err)
		}
		reply, more = append(reply, f), hdr[0]&zmtp.FlagMore != 0
	}
	if len(reply) != 7 || len(reply[0]) != 0 || string(reply[3]) != "200" {
		t.Fatalf("reply %q, want the delimiter and a 200", reply)
	}

	// With WireMaxConns connections open (z and more), one more is closed at once.
	for range WireMaxConns - 1 {
		handshaken(t, w, "DEALER")
	}
	if z, err := dialRaw(t, w, "REQ"); err == nil {
		if z.readReady() == nil {
			t.Fatal("a connection beyond WireMaxConns was served")
		}
	}
}

// Only loopback TCP addresses and Unix sockets are served.
func TestWireEndpoints(t *testing.T) {
	a := newAuth(t, Config{})
	for _, ep := range []string{"tcp://0.0.0.0:0", "tcp://:0", "tcp://localhost:0", "tcp://192.0.2.1:0", "udp://127.0.0.1:0", "inproc://zeromq.zap.01", "127.0.0.1:0"} {
		if w, err := a.ServeZAP(ep); err == nil {
			w.Close()
			t.Errorf("ServeZAP(%q) succeeded", ep)
		}
	}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil { // IPv6 loopback, where there is one
		ln.Close()
		w := serveZAP(t, a, "tcp://[::1]:0")
		if !strings.HasPrefix(w.Endpoint(), "tcp://[::1]:") {
			t.Errorf("endpoint %q", w.Endpoint())
		}
	}
	a.Close()
	if _, err := a.ServeZAP("tcp://127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("ServeZAP after Close: %v", err)
	}
}
