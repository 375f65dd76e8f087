package curve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

const (
	mechanism = "CURVE"
	// greetingMinor is the ZMTP minor version we announce: 3.0, so that libzmq sends
	// subscriptions in the 0x01/0x00 data form that zmq4 speaks (protocol-anchors §1.10).
	greetingMinor = 0
	// readBufSize is the initial read buffer: many small MESSAGEs per read syscall.
	readBufSize = 128 << 10
	// readBufMax bounds how far the read buffer grows to hold several large frames.
	readBufMax = 4 << 20
	// writeHighWater is how many sealed bytes may wait for the writer before Send blocks.
	writeHighWater = 4 << 20
	// closeLinger bounds how long Close waits for queued messages to be written.
	closeLinger = 2 * time.Second
	// errorLinger bounds how long a server waits, after sending ERROR, for the client to
	// read it and hang up (closing at once could reset the connection before it arrives).
	errorLinger = time.Second
)

// Conn is one CurveZMQ connection. Send and receive may run concurrently with each other;
// Send, SendFrame and the receive methods are each safe for concurrent use, one message at
// a time.
type Conn struct {
	conn      net.Conn
	cfg       *Config
	isClient  bool
	agreement *key.Agreement // the long-term secret made ready by a listener, or nil

	// Handshake state, guarded by hsMu until hsDone.
	hsMu     sync.Mutex
	hsDone   atomic.Bool
	hsErr    error
	deadline time.Time
	hcfg     *handshake.Config
	hsc      *handshake.Client
	hss      *handshake.Server
	welcome  []byte           // client: WELCOME body, until INITIATE is made
	result   handshake.Result // server: the authorizer's answer, until READY
	sess     *handshake.Session
	peer     Peer
	peer31   bool // the peer announced ZMTP 3.1

	// The Tracker's untrack function (server), guarded by trackMu.
	trackMu   sync.Mutex
	untrack   func()
	untracked bool // Close has taken untrack

	// Read side, guarded by rmu.
	rmu        sync.Mutex
	rbuf       []byte
	rpos, rend int
	rerr       error
	recvMore   bool         // the last frame returned had MORE
	lastRecv   atomic.Int64 // unix nanoseconds of the last frame received
	peerTTL    atomic.Int64 // the peer's PING TTL, nanoseconds
	readDL     atomic.Int64 // the user's read deadline, unix nanoseconds, 0 for none

	// Write side. sendMu keeps the frames of one message together; wmu guards the rest.
	sendMu     sync.Mutex
	wmu        sync.Mutex
	work       sync.Cond // the writer waits for bytes
	space      sync.Cond // senders wait for room
	wbuf       []byte    // frames waiting for the writer (plaintext records; see queueLocked)
	wspare     []byte    // the writer's previous buffer, for reuse
	werr       error
	writerIdle bool
	writing    bool // the writer goroutine runs
	midMessage bool // the last frame queued had MORE
	// sealInWriter makes the writer goroutine seal frames, not the callers: set for the
	// zmq4 transport, whose callers are zmq4's short-lived goroutines (one per message),
	// whose stacks would grow on every message to hold the cryptography.
	sealInWriter bool
	pending      [][]byte
	closing      bool
	writerDone   chan struct{}

	writeDL    atomic.Int64 // the user's write deadline, unix nanoseconds, 0 for none
	lingerOver atomic.Bool  // Close has cut the writer short

	closeOnce sync.Once
	closed    atomic.Bool
	hbStop    chan struct{}
	hbDone    chan struct{}
}

// Client returns a client-side Conn over conn; the handshake runs on first use.
func Client(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, true) }

// Server returns a server-side Conn over conn; the handshake runs on first use.
func Server(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, false) }

func newConn(conn net.Conn, cfg *Config, client bool) *Conn {
	c := &Conn{conn: conn, cfg: cfg, isClient: client}
	c.work.L = &c.wmu
	c.space.L = &c.wmu
	return c
}

// Dial connects to addr on network ("tcp", "unix") and completes the handshake as a
// client within ctx and the handshake timeout.
func Dial(ctx context.Context, network, addr string, cfg *Config) (*Conn, error) {
	if err := cfg.check(true); err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := Client(nc, cfg)
	if err := c.Handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Handshake runs the handshake if it has not run yet, bounded by ctx and the handshake
// timeout. Later calls return its result. On failure the connection is closed.
func (c *Conn) Handshake(ctx context.Context) error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	if c.hsDone.Load() {
		c.hsMu.Unlock()
		return c.hsErr
	}
	var err error
	if c.closed.Load() {
		err = ErrClosed
	} else if err = c.cfg.check(c.isClient); err == nil {
		c.startDeadline()
		if c.isClient {
			if err = c.clientHello(ctx); err == nil {
				err = c.clientFinish(ctx, c.cfg.metadata())
			}
		} else {
			if err = c.serverAuth(ctx, c.cfg.metadata()); err == nil {
				err = c.serverFinish(ctx, nil)
			}
		}
	}
	return c.endHandshake(err)
}

// startDeadline fixes the handshake's deadline; every step of a split handshake shares it.
func (c *Conn) startDeadline() {
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(c.cfg.handshakeTimeout())
	}
}

// withDeadline applies the handshake deadline (or ctx's, if earlier) to the connection
// for the duration of one handshake step, and makes ctx's cancellation abort its I/O.
func (c *Conn) withDeadline(ctx context.Context) (stop func()) {
	d := c.deadline
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	c.conn.SetDeadline(d)
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		c.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired // ctx ended meanwhile: its deadline must not land after ours is cleared
		}
		c.conn.SetDeadline(time.Time{})
	}
}

// greet exchanges greetings as libzmq does (see zmtp.GreetingHead): our head, the peer's
// head, our rest, the peer's rest. Sending all 64 bytes at once would let libzmq hang up
// on a mechanism mismatch before it ever showed us which mechanism it wanted.
func (c *Conn) greet() error {
	ours := zmtp.AppendGreeting(nil, mechanism, greetingMinor, !c.isClient)
	if _, err := c.conn.Write(ours[:zmtp.GreetingHead]); err != nil {
		return err
	}
	var theirs [zmtp.GreetingSize]byte
	if err := zmtp.ReadGreetingHead(readerFunc(c.readFull), &theirs); err != nil {
		return err
	}
	if _, err := c.conn.Write(ours[zmtp.GreetingHead:]); err != nil {
		return err
	}
	g, err := zmtp.ReadGreetingRest(readerFunc(c.readFull), &theirs, mechanism)
	if err != nil {
		return err
	}
	c.peer31 = g.Is31()
	return nil
}

func (c *Conn) clientHello(ctx context.Context) error {
	defer c.withDeadline(ctx)()
	c.hcfg = c.cfg.handshakeConfig(nil, c.agreement)
	hc, err := handshake.NewClient(c.hcfg)
	if err != nil {
		return err
	}
	c.hsc = hc
	// The transient key and the HELLO key are made while greetings cross.
	if err := overlap(hc.Prepare, c.greet); err != nil {
		return err
	}
	hello, err := hc.Hello(nil)
	if err != nil {
		return err
	}
	if err := c.writeCommand(hello); err != nil {
		return err
	}
	body, err := c.readCommand(welcomeCap)
	if err != nil {
		if isClosedByPeer(err) {
			return fmt.Errorf("%w (%v)", ErrNoWelcome, err)
		}
		return err
	}
	c.welcome = slices.Clone(body)
	return nil
}

// overlap runs work on another goroutine while io runs on this one, waits for both, and
// returns io's error, else work's. Waiting for work even when io fails matters: it holds
// secrets that the handshake's failure path must wipe after it has finished.
func overlap(work, io func() error) error {
	done := make(chan error, 1)
	go func() { done <- work() }()
	err := io()
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}

// welcomeCap is the largest command a client accepts in place of WELCOME (an ERROR).
const welcomeCap = 168 + 7 + 255

// clientFinish sends INITIATE with meta and reads READY or ERROR.
func (c *Conn) clientFinish(ctx context.Context, meta Metadata) error {
	defer c.withDeadline(ctx)()
	c.hcfg.Metadata = meta
	initiate, err := c.hsc.ReadWelcome(nil, c.welcome)
	clear(c.welcome)
	c.welcome = nil
	if err != nil {
		return err
	}
	if err := c.writeCommand(initiate); err != nil {
		return err
	}
	body, err := c.readCommand(30 + max(c.maxMetadata(), 7+255))
	if err != nil {
		return err
	}
	sess, err := c.hsc.ReadReady(body)
	if err != nil {
		return err
	}
	c.sess = sess
	c.peer = Peer{Key: c.cfg.ServerKey, RemoteAddr: c.conn.RemoteAddr(), Metadata: sess.PeerMetadata()}
	return c.checkPeerType()
}

// serverAuth runs the server's side up to the authorizer's decision. On a refusal it sends
// ERROR (400, 500) or nothing (300) and fails.
func (c *Conn) serverAuth(ctx context.Context, meta Metadata) error {
	defer c.withDeadline(ctx)()
	c.hcfg = c.cfg.handshakeConfig(meta, c.agreement)
	hs, err := handshake.NewServer(c.hcfg)
	if err != nil {
		return err
	}
	c.hss = hs
	// The transient key is made while the greeting and HELLO arrive.
	var body []byte
	err = overlap(hs.Prepare, func() (err error) {
		if err = c.greet(); err == nil {
			body, err = c.readCommand(200)
		}
		return err
	})
	if err != nil {
		return err
	}
	welcome, err := hs.ReadHello(nil, body)
	if err != nil {
		return err
	}
	if err := c.writeCommand(welcome); err != nil {
		return err
	}
	// The session key is computed while the client works on INITIATE.
	err = overlap(hs.PrepareSession, func() (err error) {
		body, err = c.readCommand(257 + c.maxMetadata())
		return err
	})
	if err != nil {
		return err
	}
	req, err := hs.ReadInitiate(body)
	if err != nil {
		return err
	}
	c.peer = Peer{Key: req.ClientKey, RemoteAddr: c.conn.RemoteAddr(), Metadata: hs.PeerMetadata()}
	if err := c.checkPeerType(); err != nil {
		hs.Clear()
		return err
	}
	req.Address = addressOf(c.conn.RemoteAddr())
	res := Result{Status: StatusOK, StatusText: "OK"}
	if c.cfg.Authorizer != nil {
		actx, cancel := context.WithDeadline(ctx, c.deadline)
		res = c.cfg.Authorizer.Authorize(actx, req)
		cancel()
	}
	if res.Status == StatusOK {
		c.result = res
		return nil
	}
	reply, _, err := hs.Answer(nil, res)
	if reply != nil {
		// ERROR 400 or 500; then give the client a moment to read it and hang up.
		if werr := c.writeCommand(reply); werr == nil {
			c.linger(ctx, time.Now().Add(errorLinger), true)
		}
	} else {
		// 300: as libzmq, say nothing and keep the connection until the handshake
		// deadline, so the client does not retry at once; ctx (a closing listener) ends
		// the wait sooner.
		c.linger(ctx, c.deadline, false)
	}
	return err
}

// serverFinish sends READY with meta (nil: the metadata given to serverAuth).
func (c *Conn) serverFinish(ctx context.Context, meta Metadata) error {
	defer c.withDeadline(ctx)()
	if meta != nil {
		c.hcfg.Metadata = meta
	}
	ready, sess, err := c.hss.Answer(nil, c.result)
	if err != nil {
		return err
	}
	c.sess = sess
	c.peer.Metadata = sess.PeerMetadata()
	if uid, ok := sess.PeerMetadata().Get(handshake.PropUserID); ok {
		c.peer.UserID = string(uid)
	}
	return c.writeCommand(ready)
}

// checkPeerType refuses a peer whose Socket-Type cannot talk to ours (libzmq closes such a
// connection too).
func (c *Conn) checkPeerType() error {
	if c.cfg.SocketType == "" {
		return nil
	}
	theirs, ok := c.peer.Metadata.Get(handshake.PropSocketType)
	if !ok || compatible(c.cfg.SocketType, string(theirs)) {
		return nil
	}
	return &handshake.ProtocolError{Code: handshake.CodeInvalidMetadata,
		Err: fmt.Errorf("%w: peer socket type %q cannot talk to %s", handshake.ErrMalformed, printable(theirs), c.cfg.SocketType)}
}

// endHandshake ends the handshake with err: it records the outcome under hsMu, which the
// caller holds and which it releases, and only then tells Config.Events, the Tracker and
// OnAuthenticated, any of which may close the connection at once (Close takes hsMu).
func (c *Conn) endHandshake(err error) error {
	c.finishHandshake(err)
	c.hsMu.Unlock()
	c.emit(c.hsErr)
	if c.hsErr == nil && !c.isClient {
		if t, ok := c.cfg.Authorizer.(handshake.Tracker); ok {
			c.setUntrack(t.Track(c.peer.Key, c))
		}
		if c.cfg.OnAuthenticated != nil {
			c.cfg.OnAuthenticated(c.peer)
		}
	}
	return c.hsErr
}

// setUntrack keeps the Tracker's untrack function for Close, or calls it at once if Close
// has already run (the tracker, or anyone, may have closed the connection meanwhile).
func (c *Conn) setUntrack(untrack func()) {
	c.trackMu.Lock()
	if !c.untracked {
		c.untrack = untrack
		untrack = nil
	}
	c.trackMu.Unlock()
	if untrack != nil {
		untrack()
	}
}

// takeUntrack returns the untrack function for Close to call, once.
func (c *Conn) takeUntrack() func() {
	c.trackMu.Lock()
	defer c.trackMu.Unlock()
	c.untracked = true
	u := c.untrack
	c.untrack = nil
	return u
}

// finishHandshake records the outcome, wipes what must be wiped and, on success, starts
// the writer and the heartbeat. The caller holds hsMu.
func (c *Conn) finishHandshake(err error) {
	if c.hsc != nil {
		c.hsc.Clear()
	}
	if c.hss != nil {
		c.hss.Clear()
	}
	clear(c.welcome)
	c.welcome = nil
	if err != nil {
		err = c.wrapHandshakeErr(err)
		c.hsErr = err
		c.hsDone.Store(true)
		if c.sess != nil {
			c.sess.Close()
		}
		c.conn.Close()
		return
	}
	c.lastRecv.Store(time.Now().UnixNano())
	c.hsDone.Store(true)
	// The writer and the heartbeat start before anyone else hears of the connection (a
	// Tracker may close it at once, from another goroutine); a Close that came first wins.
	c.wmu.Lock()
	if !c.closing {
		c.writing = true
		c.writerDone = make(chan struct{})
		go c.writeLoop()
		if c.cfg.HeartbeatInterval > 0 {
			c.hbStop, c.hbDone = make(chan struct{}), make(chan struct{})
			go c.heartbeat()
		}
	}
	c.wmu.Unlock()
}

func (c *Conn) wrapHandshakeErr(err error) error {
	if c.closed.Load() && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	// A key pair whose halves do not match fails in ways that look like the peer's fault;
	// checking costs a scalar multiplication, so only a failure pays for it.
	if !c.cfg.KeyPair.Secret.IsZero() && c.cfg.KeyPair.Check() != nil {
		err = fmt.Errorf("our key pair's public key does not match its secret key: %w", err)
	}
	return fmt.Errorf("curve: handshake with %s: %w", c.conn.RemoteAddr(), err)
}

// emit reports the handshake's outcome to Config.Events.
func (c *Conn) emit(err error) {
	if c.cfg.Events == nil {
		return
	}
	ev := Event{Server: !c.isClient, RemoteAddr: c.conn.RemoteAddr().String(), PeerKey: c.peer.Key, Err: err}
	if c.isClient {
		ev.PeerKey = c.cfg.ServerKey
	}
	var pe *handshake.ProtocolError
	var ae *handshake.AuthError
	switch {
	case err == nil:
		ev.Kind = EventHandshakeSucceeded
	case errors.As(err, &ae) && ae.Status != 0:
		ev.Kind, ev.Code = EventHandshakeFailedAuth, ae.Status
	case errors.As(err, &pe):
		ev.Kind, ev.Code = EventHandshakeFailedProtocol, pe.Code
	case errors.Is(err, zmtp.ErrMechanism):
		ev.Kind, ev.Code = EventHandshakeFailedProtocol, handshake.CodeMechanismMismatch
	case errors.Is(err, zmtp.ErrVersion), errors.Is(err, zmtp.ErrMalformed), errors.Is(err, zmtp.ErrTooLarge):
		ev.Kind, ev.Code = EventHandshakeFailedProtocol, handshake.CodeZMTPUnspecified
	default:
		ev.Kind = EventHandshakeFailedNoDetail
	}
	c.cfg.Events(ev)
}

// linger reads and discards until the peer hangs up or until, so that what we last wrote
// is not lost to a reset; with halfClose it first shuts our side down, telling the peer
// we are done (after ERROR), otherwise it stays silent (after a 300).
func (c *Conn) linger(ctx context.Context, until time.Time, halfClose bool) {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok && halfClose {
		cw.CloseWrite()
	}
	c.conn.SetReadDeadline(until)
	if ctx.Err() != nil {
		return // the step's ctx hook may have fired before our deadline replaced its own
	}
	var sink [512]byte
	for i := 0; i < 1<<16; i++ { // bounded: at most 32 MiB of junk
		if _, err := c.conn.Read(sink[:]); err != nil {
			return
		}
	}
}

func (c *Conn) maxMetadata() int {
	if c.cfg.MaxMetadata > 0 {
		return c.cfg.MaxMetadata
	}
	return DefaultMaxMetadata
}

// writeCommand writes one handshake command frame.
func (c *Conn) writeCommand(body []byte) error {
	frame := zmtp.AppendHeader(make([]byte, 0, 9+len(body)), zmtp.FlagCommand, len(body))
	_, err := c.conn.Write(append(frame, body...))
	return err
}

// readCommand reads one handshake command of at most max bytes: a frame with the COMMAND
// flag and without MORE (libzmq does not check the flags here; every peer sets them so).
func (c *Conn) readCommand(max int) ([]byte, error) {
	flags, body, err := c.readFrame(uint64(max))
	if err != nil {
		if errors.Is(err, zmtp.ErrTooLarge) {
			return nil, &handshake.ProtocolError{Code: handshake.CodeMalformedUnspecified, Err: err}
		}
		return nil, err
	}
	if flags&zmtp.FlagCommand == 0 || flags&zmtp.FlagMore != 0 {
		return nil, &handshake.ProtocolError{Code: handshake.CodeUnexpectedCommand,
			Err: fmt.Errorf("%w: frame flags 0x%02x during the handshake", handshake.ErrUnexpectedCommand, flags)}
	}
	return body, nil
}

// readFrame returns the next frame, whose body aliases the read buffer until the next
// call. A frame above max fails before any buffer is sized for it; the buffer then grows
// only as bytes arrive.
func (c *Conn) readFrame(max uint64) (flags byte, body []byte, err error) {
	for {
		avail := c.rbuf[c.rpos:c.rend]
		f, size, hl, err := zmtp.ParseHeader(avail, max)
		if err != nil {
			return 0, nil, err
		}
		if hl > 0 && uint64(len(avail)-hl) >= size {
			end := hl + int(size)
			c.rpos += end
			if c.rpos == c.rend {
				c.rpos, c.rend = 0, 0
			}
			return f, avail[hl:end:end], nil
		}
		need := 9
		if hl > 0 {
			need = hl + int(size)
		}
		if err := c.fill(need); err != nil {
			return 0, nil, err
		}
	}
}

// fill reads at least one more byte into the buffer, making room for a frame of need bytes
// (growing at most twofold per read, so memory follows what the peer actually sent).
func (c *Conn) fill(need int) error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, readBufSize)
	}
	// Once authenticated, frames of a size that fills the buffer in few reads make it grow
	// to hold about eight of them (up to 4 MiB), so that moving a partial frame to the
	// front is rare; the buffer still grows only when full of bytes actually received.
	if want := min(8*need, readBufMax); c.hsDone.Load() && want > len(c.rbuf) && c.rend == len(c.rbuf) && c.rpos > 0 {
		nb := make([]byte, want)
		c.rend = copy(nb, c.rbuf[c.rpos:c.rend])
		c.rpos, c.rbuf = 0, nb
	}
	if c.rpos > 0 && (c.rpos+need > len(c.rbuf) || c.rpos == c.rend) {
		n := copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos, c.rend = 0, n
	}
	if c.rend == len(c.rbuf) {
		nb := make([]byte, min(max(need, readBufSize), 2*len(c.rbuf)))
		copy(nb, c.rbuf[:c.rend])
		c.rbuf = nb
	}
	if err := c.armReadDeadline(); err != nil {
		return err
	}
	n, err := c.conn.Read(c.rbuf[c.rend:])
	c.rend += n
	if n > 0 && c.hsDone.Load() && c.heartbeatTimeout() > 0 {
		c.lastRecv.Store(time.Now().UnixNano())
	}
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return c.readErr(err)
}

// readFull is io.ReadFull over the buffered reader (for the greeting).
func (c *Conn) readFull(p []byte) (int, error) {
	for c.rend-c.rpos < len(p) {
		if err := c.fill(len(p)); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.rbuf[c.rpos:c.rend])
	c.rpos += n
	return n, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// heartbeatTimeout is the silence after which a session is dead: HeartbeatTimeout or the
// peer's TTL, whichever is shorter; 0 when neither applies.
func (c *Conn) heartbeatTimeout() time.Duration {
	t := c.cfg.HeartbeatTimeout
	if ttl := time.Duration(c.peerTTL.Load()); ttl > 0 && (t == 0 || ttl < t) {
		t = ttl
	}
	return t
}

// armReadDeadline sets the connection's read deadline from the user's deadline and, once
// established, the heartbeat timeout.
func (c *Conn) armReadDeadline() error {
	if !c.hsDone.Load() {
		return nil // the handshake deadline applies
	}
	user := c.readDL.Load()
	hb := c.heartbeatTimeout()
	if hb == 0 {
		if user == 0 {
			return c.conn.SetReadDeadline(time.Time{})
		}
		return c.conn.SetReadDeadline(time.Unix(0, user))
	}
	d := c.lastRecv.Load() + int64(hb)
	if user != 0 && user < d {
		d = user
	}
	return c.conn.SetReadDeadline(time.Unix(0, d))
}

// readErr turns a read error into the error the caller sees.
func (c *Conn) readErr(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.hsDone.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		if hb := c.heartbeatTimeout(); hb > 0 && time.Since(time.Unix(0, c.lastRecv.Load())) >= hb {
			user := c.readDL.Load()
			if user == 0 || time.Now().UnixNano() < user {
				return ErrHeartbeat
			}
		}
	}
	return err
}

func isClosedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscallECONNRESET)
}

// addressOf returns the peer address as a ZAP request carries it: the IP without the port.
func addressOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// startSplit runs the first half of a handshake whose metadata is not known yet (the zmq4
// transport learns it from zmq4's own NULL READY): a client sends HELLO and reads WELCOME;
// a server goes as far as the authorizer's decision, refusing the client there if it must.
func (c *Conn) startSplit(ctx context.Context) error {
	c.hsMu.Lock()
	if err := c.cfg.check(c.isClient); err != nil {
		return c.endHandshake(err)
	}
	c.startDeadline()
	var err error
	if c.isClient {
		err = c.clientHello(ctx)
	} else {
		err = c.serverAuth(ctx, nil)
	}
	if err != nil {
		return c.endHandshake(err)
	}
	c.hsMu.Unlock()
	return nil
}

// finishSplit completes a handshake begun with startSplit, sending meta in INITIATE
// (client) or READY (server).
func (c *Conn) finishSplit(ctx context.Context, meta Metadata) error {
	c.hsMu.Lock()
	if c.hsDone.Load() {
		c.hsMu.Unlock()
		return c.hsErr
	}
	var err error
	if c.closed.Load() {
		err = ErrClosed
	} else if c.isClient {
		err = c.clientFinish(ctx, meta)
	} else {
		err = c.serverFinish(ctx, meta)
	}
	return c.endHandshake(err)
}
