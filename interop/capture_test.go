package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

var update = flag.Bool("update", false, "regenerate the libzmq captures in testdata/libzmq at the module root (needs /usr/bin/python3 with pyzmq)")

// captureDir holds our libzmq captures (relative to this package).
const captureDir = "../testdata/libzmq"

const (
	clientCapture = "client-to-server.hex"
	serverCapture = "server-to-client.hex"
)

// libzmq's fixed fuzzing key pairs, from tests/test_bind_curve_fuzzer.cpp (also in
// curve/key/testdata/keypairs.txt). The captures are made with them, so that anyone can
// check the HELLO box.
const (
	fuzzServerPublic = "3.9-xXwy{g*w72TP*3iB9IJJRxlBH<ufTAvPd2>C"
	fuzzServerSecret = "T}t5GLq%&Qm1)y3ywu-}pY3KEA//{^Ut!M1ut+B4"
	fuzzClientPublic = "{{k*81)yMWEF{/BxdMd[5RL^qRFxBgoL<8m.D^KD"
	fuzzClientSecret = "N?Gmik8R[2ACw{b7*[-$S6[4}aO#?DB?#=<OQPc7"
)

// What the captured client and server say to each other. The client's second message
// has two frames: MORE travels only inside the box, so its outer flags are 0x00 too.
var (
	captureClientMsgs = [][][]byte{msg("hello from libzmq"), msg("second", "two frames")}
	captureServerMsgs = [][][]byte{msg("first reply"), msg("second reply")}
)

// captureRouting is the server's routing id, sent as its Identity property (as in libzmq's
// own fuzzer seeds); the client has none.
const captureRouting = "IDENT"

// fuzzPair parses one of the fixed key pairs and checks that it is consistent.
func fuzzPair(t testing.TB, public, secret string) key.KeyPair {
	t.Helper()
	s, err := key.ParseSecretKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	kp := key.NewKeyPair(s)
	if kp.Public.String() != public {
		t.Fatalf("secret %q... does not derive public key %s", secret[:4], public)
	}
	return kp
}

// loadCapture returns the byte stream of a capture file: hex, with '#' comment lines.
func loadCapture(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(captureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", name, n, err)
		}
		out = append(out, b...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// frame is one ZMTP frame of a capture.
type frame struct {
	flags byte
	body  []byte
}

// splitCapture cuts a stream into its greeting and frames. libzmq writes its greeting in
// pieces as it reads the peer's, but the stream is their concatenation: 64 bytes.
func splitCapture(t testing.TB, stream []byte) (zmtp.Greeting, []byte, []frame) {
	t.Helper()
	if len(stream) < zmtp.GreetingSize {
		t.Fatalf("stream of %d bytes", len(stream))
	}
	raw := stream[:zmtp.GreetingSize]
	g, err := zmtp.ParseGreeting(raw, "CURVE")
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	var frames []frame
	rest := stream[zmtp.GreetingSize:]
	for len(rest) > 0 {
		flags, size, n, err := zmtp.ParseHeader(rest, 1<<20)
		if err != nil || n == 0 || uint64(len(rest)-n) < size {
			t.Fatalf("frame %d: truncated or bad header (%v) in %x", len(frames), err, rest[:min(len(rest), 16)])
		}
		frames = append(frames, frame{flags, rest[n : n+int(size)]})
		rest = rest[n+int(size):]
	}
	return g, raw, frames
}

// wantCommand checks a handshake command frame's flags, name and size.
func wantCommand(t testing.TB, f frame, name string, flags byte, minSize, maxSize int) {
	t.Helper()
	if !zmtp.IsCommand(f.body, name) {
		t.Fatalf("frame is not %s: %x", name, f.body[:min(len(f.body), 16)])
	}
	if f.flags != flags {
		t.Errorf("%s: frame flags %#02x, want %#02x", name, f.flags, flags)
	}
	if len(f.body) < minSize || len(f.body) > maxSize {
		t.Errorf("%s: %d bytes, want %d to %d", name, len(f.body), minSize, maxSize)
	}
}

// wantMessages checks that frames are MESSAGEs as libzmq sends them: outer flags 0x00
// (never MORE, never COMMAND), at least 33 bytes, consecutive short nonces from first.
func wantMessages(t testing.TB, frames []frame, first uint64, count int) {
	t.Helper()
	if len(frames) != count {
		t.Fatalf("%d MESSAGE frames, want %d", len(frames), count)
	}
	for i, f := range frames {
		wantCommand(t, f, "MESSAGE", 0x00, handshake.MessageOverhead, 255)
		if n := binary.BigEndian.Uint64(f.body[8:16]); n != first+uint64(i) {
			t.Errorf("MESSAGE %d: nonce %d, want %d", i, n, first+uint64(i))
		}
	}
}

// framesOf counts the frames (MESSAGEs) a list of messages needs.
func framesOf(msgs [][][]byte) int {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return n
}

// The greetings libzmq 4.3.4 sent: ZMTP 3.1, CURVE, the as-server byte 0 even from the
// server, and padding holding the routing id's size + 1.
func TestCaptureGreetings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file    string
		padding byte
	}{
		{clientCapture, 1}, // empty routing id
		{serverCapture, byte(len(captureRouting) + 1)}, // "IDENT"
	} {
		g, raw, _ := splitCapture(t, loadCapture(t, c.file))
		if g.Major != 3 || g.Minor != 1 || !g.Is31() || g.AsServer || raw[32] != 0 {
			t.Errorf("%s: greeting %+v, as-server byte %d", c.file, g, raw[32])
		}
		if !bytes.Equal(raw[1:8], make([]byte, 7)) || raw[8] != c.padding {
			t.Errorf("%s: padding %x, want %d", c.file, raw[1:9], c.padding)
		}
	}
}

// The client's stream: HELLO (200 bytes, version 1.0, nonce 1) whose box opens with the
// fixed server key, INITIATE (nonce 2, with a DEALER's metadata), then MESSAGEs.
func TestCaptureClientStream(t *testing.T) {
	t.Parallel()
	_, _, frames := splitCapture(t, loadCapture(t, clientCapture))
	if len(frames) < 2 {
		t.Fatalf("%d frames", len(frames))
	}
	hello, initiate := frames[0], frames[1]

	wantCommand(t, hello, "HELLO", zmtp.FlagCommand, 200, 200)
	if hello.body[6] != 1 || hello.body[7] != 0 {
		t.Errorf("HELLO version %d.%d", hello.body[6], hello.body[7])
	}
	if !bytes.Equal(hello.body[8:80], make([]byte, 72)) {
		t.Error("HELLO padding is not zero")
	}
	if n := binary.BigEndian.Uint64(hello.body[112:120]); n != 1 {
		t.Errorf("HELLO nonce %d, want 1", n)
	}
	// The HELLO box is made for the fixed server key: our server opens it ...
	srv := fuzzPair(t, fuzzServerPublic, fuzzServerSecret)
	hs, err := handshake.NewServer(&handshake.Config{KeyPair: &srv})
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := hs.ReadHello(nil, hello.body)
	if err != nil {
		t.Fatalf("ReadHello on libzmq's HELLO: %v", err)
	}
	if len(welcome) != 168 {
		t.Errorf("our WELCOME is %d bytes", len(welcome))
	}
	hs.Clear()
	// ... and a server with any other key does not.
	other := newKeyPair(t)
	hs, err = handshake.NewServer(&handshake.Config{KeyPair: &other})
	if err != nil {
		t.Fatal(err)
	}
	var pe *handshake.ProtocolError
	if _, err := hs.ReadHello(nil, hello.body); !errors.As(err, &pe) || pe.Code != handshake.CodeCryptographic {
		t.Errorf("ReadHello with another server key: %v, want ZMTP_CRYPTOGRAPHIC", err)
	}

	// INITIATE always travels as a long frame; a DEALER without a routing id sends
	// Socket-Type=DEALER and an empty Identity.
	meta := handshake.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: []byte{}}}
	wantCommand(t, initiate, "INITIATE", zmtp.FlagCommand|zmtp.FlagLong, 257+meta.Size(), 257+meta.Size())
	if n := binary.BigEndian.Uint64(initiate.body[105:113]); n != 2 {
		t.Errorf("INITIATE nonce %d, want 2", n)
	}
	wantMessages(t, frames[2:], 3, framesOf(captureClientMsgs))
}

// The server's stream: WELCOME (168 bytes), READY (nonce 1, with a DEALER's metadata and
// its routing id), then MESSAGEs from nonce 2.
func TestCaptureServerStream(t *testing.T) {
	t.Parallel()
	_, _, frames := splitCapture(t, loadCapture(t, serverCapture))
	if len(frames) < 2 {
		t.Fatalf("%d frames", len(frames))
	}
	wantCommand(t, frames[0], "WELCOME", zmtp.FlagCommand, 168, 168)
	meta := handshake.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: []byte(captureRouting)}}
	wantCommand(t, frames[1], "READY", zmtp.FlagCommand, 30+meta.Size(), 30+meta.Size())
	if n := binary.BigEndian.Uint64(frames[1].body[6:14]); n != 1 {
		t.Errorf("READY nonce %d, want 1", n)
	}
	wantMessages(t, frames[2:], 2, framesOf(captureServerMsgs))
}

// libzmq's client bytes, replayed into a curve.Server with the fixed server key over a
// pipe: our ZMTP layer takes libzmq's greeting and HELLO and answers with a greeting and
// a WELCOME; the captured INITIATE then fails, as it must, on the cookie (it was made for
// another server's WELCOME), reported as ZMTP_CRYPTOGRAPHIC.
func TestCaptureReplayToGoServer(t *testing.T) {
	t.Parallel()
	stream := loadCapture(t, clientCapture)
	srv := fuzzPair(t, fuzzServerPublic, fuzzServerSecret)
	ev := newEventLog()
	ours, theirs := net.Pipe()
	defer theirs.Close()
	c := curve.Server(ours, &curve.Config{KeyPair: srv, SocketType: "DEALER", Events: ev.add, HandshakeTimeout: handshakeWait})
	defer c.Close()

	var sent bytes.Buffer
	readDone := make(chan struct{})
	go func() { // everything our server says
		defer close(readDone)
		io.Copy(&sent, theirs)
	}()
	go theirs.Write(stream) // fails once our server hangs up; the pipe is closed at the end

	ctx, cancel := context.WithTimeout(context.Background(), handshakeWait)
	defer cancel()
	err := c.Handshake(ctx)
	var pe *handshake.ProtocolError
	if !errors.As(err, &pe) || pe.Code != handshake.CodeCryptographic || !strings.Contains(err.Error(), "cookie") {
		t.Fatalf("Handshake: %v, want a cookie failure", err)
	}
	wantEvent(t, ev.next(t), curve.EventHandshakeFailedProtocol, handshake.CodeCryptographic)
	select {
	case <-readDone:
	case <-time.After(handshakeWait):
		t.Fatal("our server did not hang up")
	}
	g, _, frames := splitCapture(t, sent.Bytes())
	if g.Major != 3 || g.Minor != 0 {
		t.Errorf("our greeting announces %d.%d, want 3.0", g.Major, g.Minor)
	}
	if len(frames) != 1 {
		t.Fatalf("our server sent %d frames, want a WELCOME only", len(frames))
	}
	wantCommand(t, frames[0], "WELCOME", zmtp.FlagCommand, 168, 168)
}

// recorder keeps what a proxy forwarded in one direction.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// pump copies src to dst, recording each chunk before forwarding it: once the far end has
// received something, it is in the recording.
func (r *recorder) pump(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.buf.Write(buf[:n])
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// startRecordingProxy forwards one connection from its own address to target and records
// both directions.
func startRecordingProxy(t testing.TB, target string) (addr string, c2s, s2c *recorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c2s, s2c = &recorder{}, &recorder{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		in, err := ln.Accept()
		ln.Close() // one connection only
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", target, handshakeWait)
		if err != nil {
			in.Close()
			return
		}
		mu.Lock()
		conns = append(conns, in, out)
		mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); c2s.pump(out, in) }()
		go func() { defer wg.Done(); s2c.pump(in, out) }()
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), c2s, s2c
}

// TestRegenerateCaptures makes testdata/libzmq anew (with -update only): a pyzmq DEALER
// client (no routing id) and a pyzmq DEALER server (routing id "IDENT", ZAP through
// ThreadAuthenticator) with libzmq's fixed fuzzing keys talk through a recording proxy;
// the client sends captureClientMsgs, the server captureServerMsgs.
func TestRegenerateCaptures(t *testing.T) {
	if !*update {
		t.Skip("the captures are regenerated only with -update")
	}
	py := python(t)
	fuzzPair(t, fuzzServerPublic, fuzzServerSecret)
	cliPair := fuzzPair(t, fuzzClientPublic, fuzzClientSecret)

	srv := startPeer(t, "server.py", "--type=DEALER", "--identity="+captureRouting,
		"--secret="+fuzzServerSecret, "--allow-dir="+allowDir(t, cliPair.Public))
	proxy, c2s, s2c := startRecordingProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.ready()))
	cli := startPeer(t, "client.py", "--type=DEALER", "--connect=tcp://"+proxy,
		"--server-key="+fuzzServerPublic, "--public="+fuzzClientPublic, "--secret="+fuzzClientSecret)
	cli.ready()

	cli.send(0, captureClientMsgs...)
	for i, m := range srv.recv(len(captureClientMsgs), replyWait) {
		wantMsg(t, "at the server", m, captureClientMsgs[i])
	}
	srv.send(0, captureServerMsgs...)
	for i, m := range cli.recv(len(captureServerMsgs), replyWait) {
		wantMsg(t, "at the client", m, captureServerMsgs[i])
	}
	srv.waitMonitor("HANDSHAKE_SUCCEEDED")
	cli.waitMonitor("HANDSHAKE_SUCCEEDED")

	provenance := captureProvenance(t, py)
	for _, f := range []struct {
		name, what string
		data       []byte
	}{
		{clientCapture, "the bytes the pyzmq client sent to the server", c2s.bytes()},
		{serverCapture, "the bytes the pyzmq server sent to the client", s2c.bytes()},
	} {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# A libzmq CURVE capture: %s,\n", f.what)
		b.WriteString("# in order, as one stream (however TCP split it), 32 bytes of hex a line.\n")
		b.WriteString(provenance)
		for i := 0; i < len(f.data); i += 32 {
			b.WriteString(hex.EncodeToString(f.data[i:min(i+32, len(f.data))]))
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(captureDir, f.name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d bytes", f.name, len(f.data))
	}
}

// captureProvenance returns the comment lines every capture file carries.
func captureProvenance(t testing.TB, py string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", "import zmq; print('pyzmq %s / libzmq %s' % (zmq.__version__, zmq.zmq_version()))").Output()
	if err != nil {
		t.Fatal(err)
	}
	system := "an unknown system"
	if osr, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(osr), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				system = strings.Trim(v, `"`)
			}
		}
	}
	var b strings.Builder
	b.WriteString("# Made by this repository's interop test (interop/capture_test.go,\n")
	fmt.Fprintf(&b, "# TestRegenerateCaptures) on %s\n", system)
	fmt.Fprintf(&b, "# with Debian's python3-zmq: %s, through a recording proxy on\n", strings.TrimSpace(string(out)))
	b.WriteString("# 127.0.0.1; not copied from anywhere. Keys: libzmq's fixed fuzzing keys from\n")
	b.WriteString("# tests/test_bind_curve_fuzzer.cpp:\n")
	fmt.Fprintf(&b, "#   server public %s secret %s\n", fuzzServerPublic, fuzzServerSecret)
	fmt.Fprintf(&b, "#   client public %s secret %s\n", fuzzClientPublic, fuzzClientSecret)
	b.WriteString("# The client (DEALER, no routing id) sends [\"hello from libzmq\"] and\n")
	b.WriteString("# [\"second\", \"two frames\"]; the server (DEALER, routing id \"IDENT\") answers\n")
	b.WriteString("# [\"first reply\"] and [\"second reply\"]. Transient keys and nonces in boxes are\n")
	b.WriteString("# random, so every run differs; the tests check what does not.\n")
	b.WriteString("# Regenerate with: go test ./interop/ -run TestRegenerateCaptures -update\n")
	return b.String()
}
