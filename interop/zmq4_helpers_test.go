package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"go.uber.org/goleak"

	"github.com/curvezmq/curvezmq/curve"
)

// Helpers for the zmq4 matrix (zmq4_test.go): go-zeromq/zmq4 sockets on the curve://
// transport against libzmq sockets run by peers/zmq4_peer.py.

// zmq4Pair is a socket pair of the matrix: the server binds and is the CURVE server, as
// in Cylc; the client connects.
type zmq4Pair struct {
	server, client       string
	newServer, newClient func(context.Context, ...zmq4.Option) zmq4.Socket
}

var zmq4Pairs = []zmq4Pair{
	{"REP", "REQ", zmq4.NewRep, zmq4.NewReq},
	{"PUB", "SUB", zmq4.NewPub, zmq4.NewSub},
	{"ROUTER", "DEALER", zmq4.NewRouter, zmq4.NewDealer},
	{"PULL", "PUSH", zmq4.NewPull, zmq4.NewPush},
}

// name names one direction of the pair: which side is Go and which is libzmq.
func (p zmq4Pair) name(goServer bool) string {
	if goServer {
		return "libzmq-" + p.client + "_to_go-" + p.server
	}
	return "go-" + p.client + "_to_libzmq-" + p.server
}

const (
	// zmq4Topic is what the libzmq and zmq4 SUBs subscribe to; messages on PUB/SUB are
	// sent with it as their first frame.
	zmq4Topic = "T"
	// zmq4DealerID and zmq4PyDealerID are the routing ids of the Go and libzmq DEALERs.
	zmq4DealerID   = "go-dealer"
	zmq4PyDealerID = "py-dealer"
	// zmq4PubWriter is the goroutine zmq4 v0.17.0's PUB socket leaks: pubSocket.Close
	// never stops its pubMWriter.
	zmq4PubWriter = "github.com/go-zeromq/zmq4.(*pubMWriter).run"
)

// zmq4Log collects what a zmq4 socket logs (zmq4 logs each connection whose Open fails).
type zmq4Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *zmq4Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *zmq4Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *zmq4Log) option() zmq4.Option { return zmq4.WithLogger(log.New(l, "zmq4 log: ", 0)) }

// zmq4Socket is a Go socket under test: Close runs once (a zmq4 REP panics when closed
// twice), and Recv is bounded.
type zmq4Socket struct {
	zmq4.Socket
	log       *zmq4Log
	closeOnce sync.Once
	closeErr  error

	// The receive pump (every type but REQ, whose Recv works only after a Send).
	rx       chan zmq4Result
	stop     chan struct{}
	pumpDone chan struct{}
}

type zmq4Result struct {
	m   zmq4.Msg
	err error
}

// newZmq4Socket builds a socket with f and cfg (nil: a plain zmq4 socket, for tcp://);
// it is closed when the test ends.
func newZmq4Socket(t testing.TB, f func(context.Context, ...zmq4.Option) zmq4.Socket, cfg *curve.Config, opts ...zmq4.Option) *zmq4Socket {
	s := &zmq4Socket{log: &zmq4Log{}}
	ctx := context.Background()
	if cfg != nil {
		ctx = curve.WithConfig(ctx, cfg)
	}
	s.Socket = f(ctx, append(opts, s.log.option())...)
	t.Cleanup(func() { s.close() })
	return s
}

// close closes the socket (once) and waits for the pump.
func (s *zmq4Socket) close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.Socket.Close()
		if s.stop != nil {
			close(s.stop)
			<-s.pumpDone
		}
	})
	return s.closeErr
}

// pump receives in the background for every later recv.
func (s *zmq4Socket) pump() {
	s.rx, s.stop, s.pumpDone = make(chan zmq4Result, 64), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.pumpDone)
		for {
			m, err := s.Socket.Recv()
			select {
			case s.rx <- zmq4Result{m, err}:
			case <-s.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// recvErr receives one message within d. Without a pump (REQ) it calls Recv on its own
// goroutine and closes the socket on timeout, which makes Recv return: zmq4's Recv has no
// deadline.
func (s *zmq4Socket) recvErr(d time.Duration) (zmq4.Msg, error) {
	var ch <-chan zmq4Result
	var done <-chan struct{} // the pump's end: nothing more will come
	if s.rx != nil {
		ch, done = s.rx, s.pumpDone
	} else {
		c := make(chan zmq4Result, 1)
		go func() { m, err := s.Socket.Recv(); c <- zmq4Result{m, err} }()
		ch = c
		defer func() {
			if ch != nil { // timed out: unblock Recv and reap its goroutine
				s.close()
				<-c
			}
		}()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		ch = nil
		return r.m, r.err
	case <-done:
		return zmq4.Msg{}, errors.New("socket closed")
	case <-timer.C:
		return zmq4.Msg{}, fmt.Errorf("no message within %v", d)
	}
}

// recv receives one message within replyWait.
func (s *zmq4Socket) recv(t testing.TB) [][]byte {
	t.Helper()
	m, err := s.recvErr(replyWait)
	if err != nil {
		t.Fatalf("%v Recv: %v", s.Type(), err)
	}
	return m.Frames
}

// recvNothing asserts that nothing arrives within d (a socket with a pump only).
func (s *zmq4Socket) recvNothing(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.rx:
		t.Fatalf("%v received %s (err %v), want nothing", s.Type(), describe(r.m.Frames), r.err)
	case <-time.After(d):
	}
}

func (s *zmq4Socket) send(frames [][]byte) error {
	if err := s.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		return fmt.Errorf("%v Send: %w", s.Type(), err)
	}
	return nil
}

// sendAll sends msgs from a goroutine (so that the test can receive meanwhile) and
// reports on the returned channel.
func (s *zmq4Socket) sendAll(msgs [][][]byte) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := s.send(m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return errc
}

// waitTopic waits until a PUB socket has seen a subscription to topic (bounded polling:
// zmq4 has no event for it).
func (s *zmq4Socket) waitTopic(t testing.TB, topic string) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for {
		for _, got := range s.Socket.(zmq4.Topics).Topics() {
			if got == topic {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no subscription to %q reached the PUB within %v", topic, eventWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait waits for a sender's result within d.
func zmq4Wait(t testing.TB, errc <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("the Go side did not finish within %v", d)
	}
}

// startZmq4Peer starts peers/zmq4_peer.py.
func startZmq4Peer(t testing.TB, args ...string) *peer {
	t.Helper()
	return startPeer(t, "zmq4_peer.py", args...)
}

// zmq4ServerPeer starts a libzmq CURVE server of type typ with key pair srv, admitting
// the keys in allow through a ThreadAuthenticator (configure_curve('*', DIR)); it returns
// the peer and its address.
func zmq4ServerPeer(t testing.TB, typ string, srv curve.KeyPair, allow []curve.PublicKey, extra ...string) (*peer, string) {
	t.Helper()
	args := append([]string{"--type=" + typ, "--bind", "--secret=" + z85Secret(srv), "--allow-dir=" + allowDir(t, allow...)}, extra...)
	py := startZmq4Peer(t, args...)
	return py, "127.0.0.1:" + strconv.Itoa(py.ready())
}

// zmq4ClientPeer starts a libzmq CURVE client of type typ with key pair cli, connecting
// to addr and expecting server key srv.
func zmq4ClientPeer(t testing.TB, typ, addr string, srv curve.PublicKey, cli curve.KeyPair, extra ...string) *peer {
	t.Helper()
	args := append([]string{"--type=" + typ, "--connect=tcp://" + addr,
		"--server-key=" + srv.String(), "--public=" + cli.Public.String(), "--secret=" + z85Secret(cli)}, extra...)
	if typ == "SUB" {
		args = append(args, "--subscribe="+zmq4Topic)
	}
	if typ == "DEALER" {
		args = append(args, "--identity="+zmq4PyDealerID)
	}
	py := startZmq4Peer(t, args...)
	py.ready()
	return py
}

// zmq4ClientOpts are the options of a Go client socket of type typ.
func zmq4ClientOpts(typ string, more ...zmq4.Option) []zmq4.Option {
	if typ == "DEALER" {
		more = append(more, zmq4.WithID(zmq4.SocketIdentity(zmq4DealerID)))
	}
	return more
}

// zmq4Relay is a TCP relay on 127.0.0.1 that counts the bytes crossing it each way, so
// that a test can see heartbeats that neither zmq4 nor libzmq report.
type zmq4Relay struct {
	ln       net.Listener
	target   string
	toServer atomic.Int64 // bytes from the connecting side (the CURVE client)
	toClient atomic.Int64 // bytes from the target (the CURVE server)
	conns    atomic.Int64 // connections relayed

	mu     sync.Mutex
	open   []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func startZmq4Relay(t testing.TB, target string) *zmq4Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &zmq4Relay{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *zmq4Relay) addr() string { return r.ln.Addr().String() }

func (r *zmq4Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.open = append(r.open, c)
	return true
}

func (r *zmq4Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			return
		}
		s, err := net.DialTimeout("tcp", r.target, handshakeWait)
		if err != nil {
			c.Close()
			continue
		}
		if !r.track(s) {
			return
		}
		r.conns.Add(1)
		r.wg.Add(2)
		go r.copy(s, c, &r.toServer)
		go r.copy(c, s, &r.toClient)
	}
}

// copy copies src to dst, counting, then passes the end of the stream on.
func (r *zmq4Relay) copy(dst, src net.Conn, n *atomic.Int64) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				src.Close()
				return
			}
			n.Add(int64(k))
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

func (r *zmq4Relay) close() {
	r.mu.Lock()
	r.closed = true
	open := r.open
	r.mu.Unlock()
	r.ln.Close()
	for _, c := range open {
		c.Close()
	}
	r.wg.Wait()
}

// zmq4OpenFDs lists this process's open file descriptors (Linux), each with what it
// refers to.
func zmq4OpenFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = target
	}
	return fds
}

// zmq4NoLeaks checks, once the test, its subtests and their cleanups are all done, that
// no file descriptor and no goroutine started since is left (polling, bounded, for closes
// still in flight). The test must not be parallel, nor run beside parallel tests.
func zmq4NoLeaks(t *testing.T) {
	t.Helper()
	// Start the network poller first: its epoll descriptor lives as long as the process.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	before := zmq4OpenFDs(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		var extra []string
		deadline := time.Now().Add(5 * time.Second)
		for {
			extra = extra[:0]
			for fd, target := range zmq4OpenFDs(t) {
				if old, ok := before[fd]; !ok || old != target {
					extra = append(extra, fd+" -> "+target)
				}
			}
			if len(extra) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // bounded poll for closes in flight
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			t.Errorf("file descriptors left open (%d): %s", len(extra), strings.Join(extra, ", "))
		}
		goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction(zmq4PubWriter))
	})
}
