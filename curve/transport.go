package curve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/transport"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// Transport names registered with zmq4.
const (
	TransportTCP = "curve"
	TransportIPC = "curve+ipc"
)

func init() {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(zmq4.RegisterTransport(TransportTCP, curveTransport{network: "tcp"}))
	must(zmq4.RegisterTransport(TransportIPC, curveTransport{network: "unix"}))
}

type ctxKey struct{}

// WithConfig returns a context carrying cfg, for building zmq4 sockets whose "curve://"
// and "curve+ipc://" endpoints use it.
func WithConfig(ctx context.Context, cfg *Config) context.Context {
	return context.WithValue(ctx, ctxKey{}, cfg)
}

// ErrNoConfig is returned by a zmq4 socket's Dial or Listen on a curve endpoint when the
// socket was built without WithConfig.
var ErrNoConfig = errors.New("curve: zmq4 socket has no curve.Config: build it with zmq4.NewXxx(curve.WithConfig(ctx, cfg))")

func configFrom(ctx context.Context) (*Config, error) {
	cfg, ok := ctx.Value(ctxKey{}).(*Config)
	if !ok || cfg == nil {
		return nil, ErrNoConfig
	}
	if err := cfg.checkPair(!cfg.Server); err != nil {
		return nil, err
	}
	return cfg, nil
}

type curveTransport struct{ network string }

func (t curveTransport) Dial(ctx context.Context, dialer transport.Dialer, addr string) (net.Conn, error) {
	cfg, err := configFrom(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := dialer.DialContext(ctx, t.network, addr)
	if err != nil {
		return nil, err
	}
	z := newZConn(newConn(nc, cfg, !cfg.Server))
	if err := z.c.startSplit(ctx); err != nil {
		z.Close()
		return nil, err
	}
	z.redial = func(rctx context.Context) (*Conn, error) {
		nc, err := dialer.DialContext(rctx, t.network, addr)
		if err != nil {
			return nil, err
		}
		c := newConn(nc, cfg, !cfg.Server)
		c.sealInWriter = true
		if err := c.startSplit(rctx); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.finishSplit(rctx, z.meta); err != nil {
			c.Close()
			return nil, err
		}
		if err := checkTypes(z.meta, c.peer.Metadata); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	z.life = ctx
	z.armTimer()
	return z, nil
}

func (t curveTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	cfg, err := configFrom(ctx)
	if err != nil {
		return nil, err
	}
	inner, err := net.Listen(t.network, addr)
	if err != nil {
		return nil, err
	}
	l := &zListener{inner: inner, cfg: cfg, ready: make(chan *zconn), done: make(chan struct{}),
		agreement: key.NewAgreement(&cfg.KeyPair.Secret)}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (t curveTransport) Addr(ep string) (string, error) {
	if t.network == "unix" {
		return ep, nil
	}
	return transport.New("tcp").Addr(ep)
}

// zListener runs each accepted connection's handshake in its own goroutine and hands zmq4
// only those whose client was authorized.
type zListener struct {
	inner     net.Listener
	cfg       *Config
	agreement *key.Agreement // the long-term secret made ready once
	ready     chan *zconn
	done      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (l *zListener) acceptLoop() {
	defer l.wg.Done()
	delay := time.Duration(0)
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// A temporary failure (e.g. out of file descriptors): back off, bounded.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-l.done:
				return
			}
			continue
		}
		delay = 0
		l.wg.Add(1)
		go l.handshake(nc)
	}
}

func (l *zListener) handshake(nc net.Conn) {
	defer l.wg.Done()
	c := newConn(nc, l.cfg, !l.cfg.Server)
	c.agreement = l.agreement
	z := newZConn(c)
	z.life = l.ctx
	if err := z.c.startSplit(l.ctx); err != nil {
		z.Close()
		return
	}
	z.armTimer()
	select {
	case l.ready <- z:
	case <-l.done:
		z.Close()
	case <-z.expired:
		// zmq4 did not take it before the deadline; the timer closed it.
	}
}

// Accept returns the next connection whose client was authorized. It fails only once the
// listener is closed, so zmq4's accept loop never spins.
func (l *zListener) Accept() (net.Conn, error) {
	select {
	case z := <-l.ready:
		return z, nil
	case <-l.done:
		return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
	}
}

// Close stops accepting, closes connections still in their handshake, and waits for their
// goroutines.
func (l *zListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		err = l.inner.Close()
		l.wg.Wait()
	})
	return err
}

func (l *zListener) Addr() net.Addr { return l.inner.Addr() }

// zconn is the net.Conn zmq4 sees: a NULL-security ZMTP stream over a CURVE Conn.
//
// A connection made by Dial reconnects by itself when its connection is lost, as libzmq's
// sessions do: it dials again with a growing delay (100 ms to 2 s), runs a whole new
// handshake with the metadata zmq4 gave the first one, and carries on; zmq4 never sees the
// loss. (zmq4's own WithAutomaticReconnect can deadlock a REQ socket in v0.17.0 and is not
// needed.) Messages in flight when the connection broke are lost, as in libzmq, and never
// in part: a received message reaches zmq4 only once its last frame is in (zmq4 cannot
// drop a message it has begun to read), and the rest of a message whose first frames went
// out on a lost connection is dropped. A refusal by the server (ERROR) ends the
// connection for good, as in libzmq.
type zconn struct {
	// The CURVE connection in use, replaced on reconnection; guarded by mu.
	mu           sync.Mutex
	cond         sync.Cond
	c            *Conn
	gen          uint64
	reconnecting bool
	closed       bool
	fatal        error
	done         chan struct{} // closed by Close
	redial       func(context.Context) (*Conn, error)
	life         context.Context // the socket's context (dial side)
	meta         Metadata        // zmq4's metadata, replayed by each new handshake

	// Write side (zmq4's writes), guarded by wmu.
	wmu      sync.Mutex
	phase    int // phaseGreeting, phaseReady, phaseOpen
	pending  []byte
	wMid     bool   // the last frame sent had MORE
	wGen     uint64 // the generation of the connection that frame went out on
	skipping bool   // dropping the rest of a message cut by a reconnection

	// Read side: the reader goroutine queues frames (with ZMTP headers) in rq for zmq4's
	// Read; guarded by rmu. zmq4 reads rq[rpos:pub], whole messages only; rq[pub:] holds
	// the frames of a message still arriving. The reader appends beyond len(rq) without
	// the lock, where Read never looks, and publishes under it; only the reader compacts,
	// publishes and truncates.
	rmu      sync.Mutex
	rdata    sync.Cond // Read waits for bytes
	rspace   sync.Cond // the reader waits for room
	rq       []byte
	rpos     int   // zmq4's position in rq
	pub      int   // the end of what zmq4 may read: rpos <= pub <= len(rq)
	rerr     error // why no more bytes will come, once rq[rpos:pub] drains
	readDone chan struct{}

	timerMu   sync.Mutex
	timer     *time.Timer
	finishing bool // the CURVE handshake's second half has begun: its own deadline rules
	timedOut  bool // the timer fired first
	expired   chan struct{}
	open      chan struct{} // closed once zmq4's NULL handshake has been answered
}

const (
	phaseGreeting = iota
	phaseReady
	phaseOpen
)

func newZConn(c *Conn) *zconn {
	c.sealInWriter = true
	z := &zconn{c: c, expired: make(chan struct{}), open: make(chan struct{}), done: make(chan struct{}),
		readDone: make(chan struct{}), life: context.Background()}
	z.cond.L = &z.mu
	z.rdata.L = &z.rmu
	z.rspace.L = &z.rmu
	return z
}

// readQueueMax is how many received bytes may wait for zmq4 before the reader stops
// reading (and TCP pushes back on the peer).
const readQueueMax = 4 << 20

// current returns the CURVE connection in use and its generation.
func (z *zconn) current() (*Conn, uint64) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.c, z.gen
}

// armTimer closes the connection if zmq4's NULL handshake has not completed by the
// handshake deadline: zmq4 never closes a connection whose Open failed.
func (z *zconn) armTimer() {
	z.timerMu.Lock()
	defer z.timerMu.Unlock()
	c, _ := z.current()
	z.timer = time.AfterFunc(time.Until(c.deadline), func() {
		z.timerMu.Lock()
		if z.finishing {
			// The handshake under way has the same deadline and ends itself, so the
			// caller learns it timed out rather than that we closed it.
			z.timerMu.Unlock()
			return
		}
		z.timedOut = true
		z.timerMu.Unlock()
		z.Close()
		close(z.expired)
	})
}

func (z *zconn) stopTimer() {
	z.timerMu.Lock()
	if z.timer != nil {
		z.timer.Stop()
	}
	z.timerMu.Unlock()
}

// Write takes zmq4's byte stream: its greeting, then its READY command, then frames.
func (z *zconn) Write(p []byte) (int, error) {
	z.wmu.Lock()
	defer z.wmu.Unlock()
	return z.write(p)
}

// write is Write with wmu held.
func (z *zconn) write(p []byte) (int, error) {
	n := len(p)
	c, _ := z.current()
	if z.phase == phaseOpen && len(z.pending) == 0 {
		// Fast path: whole frames straight from zmq4's buffer.
		for len(p) > 0 {
			flags, size, hl, err := zmtp.ParseHeader(p, c.cfg.maxMessage())
			if err != nil {
				return 0, z.fail(err)
			}
			if hl == 0 || uint64(len(p)-hl) < size {
				break
			}
			if err := z.sendFrame(flags, p[hl:hl+int(size)]); err != nil {
				return 0, err
			}
			p = p[hl+int(size):]
		}
		if len(p) == 0 {
			return n, nil
		}
	}
	if z.phase == phaseOpen && len(z.pending) > 0 && len(z.pending) < 9 {
		// zmq4 writes a frame's header and its body in separate calls: with a lone header
		// pending and the body here, seal the body where it lies.
		hdr := append(z.pending[:len(z.pending):len(z.pending)], p[:min(len(p), 9-len(z.pending))]...)
		flags, size, hl, err := zmtp.ParseHeader(hdr, c.cfg.maxMessage())
		if err != nil {
			return 0, z.fail(err)
		}
		if hl == len(z.pending) && uint64(len(p)) >= size {
			if err := z.sendFrame(flags, p[:size]); err != nil {
				return 0, err
			}
			z.pending = z.pending[:0]
			if rest := p[size:]; len(rest) > 0 {
				if _, err := z.write(rest); err != nil {
					return 0, err
				}
			}
			return n, nil
		}
	}
	z.pending = append(z.pending, p...)
	for {
		consumed, err := z.step(c)
		if err != nil {
			return 0, err
		}
		if consumed == 0 {
			break
		}
		z.pending = z.pending[consumed:]
	}
	if len(z.pending) == 0 {
		z.pending = z.pending[:0:0]
	}
	return n, nil
}

// step consumes one unit (greeting, command or frame) from z.pending, if whole.
func (z *zconn) step(c *Conn) (int, error) {
	switch z.phase {
	case phaseGreeting:
		if len(z.pending) < zmtp.GreetingSize {
			return 0, nil
		}
		if _, err := zmtp.ParseGreeting(z.pending[:zmtp.GreetingSize], "NULL"); err != nil {
			return 0, z.fail(fmt.Errorf("curve: zmq4 socket is not using NULL security: %w", err))
		}
		// zmq4 reads a NULL greeting back: version 3.0, as zmq4 speaks.
		z.emit(zmtp.AppendGreeting(nil, "NULL", 0, !c.isClient))
		z.phase = phaseReady
		return zmtp.GreetingSize, nil
	}
	flags, size, hl, err := zmtp.ParseHeader(z.pending, c.cfg.maxMessage())
	if err != nil {
		return 0, z.fail(err)
	}
	if hl == 0 || uint64(len(z.pending)-hl) < size {
		return 0, nil
	}
	body := z.pending[hl : hl+int(size)]
	if z.phase == phaseReady {
		if err := z.finish(c, flags, body); err != nil {
			return 0, err
		}
	} else if err := z.sendFrame(flags, body); err != nil {
		return 0, err
	}
	return hl + int(size), nil
}

// finish completes the CURVE handshake with the metadata of zmq4's READY, then answers
// zmq4 with a NULL READY carrying the peer's metadata.
func (z *zconn) finish(c *Conn, flags byte, body []byte) error {
	name, data, err := zmtp.ParseCommand(body)
	if err != nil || flags&zmtp.FlagCommand == 0 || name != "READY" {
		return z.fail(fmt.Errorf("curve: zmq4 sent %q, not READY", name))
	}
	ours, err := handshake.ParseMetadata(data)
	if err != nil {
		return z.fail(err)
	}
	z.meta = ours
	z.timerMu.Lock()
	late := z.timedOut
	z.finishing = true
	z.timerMu.Unlock()
	if late {
		return z.fail(fmt.Errorf("curve: handshake deadline passed before zmq4's READY: %w", os.ErrDeadlineExceeded))
	}
	if err := c.finishSplit(z.life, ours); err != nil {
		return z.fail(err)
	}
	if err := checkTypes(ours, c.peer.Metadata); err != nil {
		return z.fail(err)
	}
	// The peer's metadata, re-encoded: only properties zmq4 can parse, never bytes as
	// received (zmq4's metadata parser does not check bounds).
	var peer Metadata
	for _, p := range c.peer.Metadata {
		if p.Name != "" {
			peer = append(peer, p)
		}
	}
	raw, err := peer.Append(nil)
	if err != nil {
		return z.fail(err)
	}
	z.emit(zmtp.AppendCommand(nil, "READY", raw))
	z.phase = phaseOpen
	close(z.open)
	z.stopTimer()
	go z.readLoop()
	return nil
}

// checkTypes refuses a pair of socket types that cannot talk (zmq4 would refuse it only
// after its Open, leaving us a connection it never closes).
func checkTypes(ours, theirs Metadata) error {
	o, _ := ours.Get(handshake.PropSocketType)
	p, _ := theirs.Get(handshake.PropSocketType)
	if len(o) > 0 && len(p) > 0 && !compatible(string(o), string(p)) {
		return fmt.Errorf("curve: peer socket type %q cannot talk to %s", printable(p), printable(o))
	}
	return nil
}

// sendFrame sends one of zmq4's frames as one MESSAGE: MORE and COMMAND move to the inner
// flags byte. A lost connection is replaced first (dial side).
func (z *zconn) sendFrame(flags byte, body []byte) error {
	var inner byte
	if flags&zmtp.FlagMore != 0 {
		inner |= handshake.MessageMore
	}
	if flags&zmtp.FlagCommand != 0 {
		inner |= handshake.MessageCommand
	}
	for attempt := 0; ; attempt++ {
		c, gen := z.current()
		if z.wMid && gen != z.wGen {
			// The message's first frames went out on a connection since replaced (by us or
			// by the reader): drop the rest, which alone would be a message of its own.
			z.wMid, z.skipping = false, true
		}
		if z.skipping {
			z.skipping = inner&handshake.MessageMore != 0
			return nil
		}
		err := c.sendFrame(body, inner)
		if err == nil {
			z.wMid, z.wGen = inner&handshake.MessageMore != 0, gen
			return nil
		}
		if attempt > 0 {
			return z.fail(err)
		}
		if err := z.reconnect(gen, err); err != nil {
			return err
		}
	}
}

// reconnect replaces the connection of generation gen, which failed with cause, unless
// someone already did. It returns an error when the connection cannot be replaced: a
// listen-side connection, a refusal by the server, or Close.
func (z *zconn) reconnect(gen uint64, cause error) error {
	var ae *AuthError
	if z.redial == nil || errors.As(cause, &ae) {
		return z.fail(cause)
	}
	z.mu.Lock()
	for z.reconnecting && !z.closed {
		z.cond.Wait()
	}
	switch {
	case z.closed:
		z.mu.Unlock()
		return ErrClosed
	case z.fatal != nil:
		z.mu.Unlock()
		return z.fatal
	case z.gen != gen:
		z.mu.Unlock()
		return nil
	}
	z.reconnecting = true
	old := z.c
	z.mu.Unlock()
	old.Close()

	c, err := z.redialLoop()
	z.mu.Lock()
	z.reconnecting = false
	if err == nil && z.closed {
		c.Close()
		err = ErrClosed
	}
	if err == nil {
		z.c = c
		z.gen++
	} else if z.fatal == nil {
		z.fatal = err
	}
	z.cond.Broadcast()
	z.mu.Unlock()
	return err
}

// redialLoop dials until a handshake completes, waiting 100 ms after the first failure and
// twice as long after each next one, up to 2 s. A refusal is final.
func (z *zconn) redialLoop() (*Conn, error) {
	ctx, cancel := context.WithCancel(z.life)
	defer cancel()
	go func() {
		select {
		case <-z.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	delay := 100 * time.Millisecond
	for {
		c, err := z.redial(ctx)
		if err == nil {
			return c, nil
		}
		var ae *AuthError
		if errors.As(err, &ae) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ErrClosed
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// emit queues synthesized bytes for zmq4 to read (before the reader starts).
func (z *zconn) emit(b []byte) {
	z.rmu.Lock()
	z.rq = append(z.rq, b...)
	z.pub = len(z.rq)
	z.rdata.Broadcast()
	z.rmu.Unlock()
}

// fail closes the connection, since zmq4 will not, and returns err.
func (z *zconn) fail(err error) error {
	z.Close()
	return err
}

// Read hands zmq4 the synthesized handshake answers, then received frames.
func (z *zconn) Read(p []byte) (int, error) {
	z.rmu.Lock()
	defer z.rmu.Unlock()
	for z.rpos == z.pub && z.rerr == nil {
		select {
		case <-z.open:
		default:
			// zmq4 reads only after writing what we answer: nothing will come.
			z.rerr = fmt.Errorf("curve: zmq4 read before its handshake: %w", io.EOF)
			go z.Close()
			return 0, z.rerr
		}
		z.rdata.Wait()
	}
	if z.rpos == z.pub {
		return 0, z.rerr
	}
	n := copy(p, z.rq[z.rpos:z.pub])
	z.rpos += n
	if z.pub-z.rpos < readQueueMax/2 {
		z.rspace.Signal()
	}
	return n, nil
}

// readLoop receives frames for zmq4 all the time, as libzmq's I/O thread does, so that a
// lost connection is noticed (and replaced, on the dial side) even while zmq4 is not
// reading, and so that PINGs are answered and heartbeats kept.
func (z *zconn) readLoop() {
	defer close(z.readDone)
	_, rgen := z.current()
	var msgSize uint64 // the payload of the message being received, so far
	for {
		c, gen := z.current()
		z.rmu.Lock()
		for z.pub-z.rpos >= readQueueMax && z.rerr == nil {
			z.rspace.Wait()
		}
		if z.rerr != nil {
			z.rmu.Unlock()
			return
		}
		if gen != rgen {
			// The connection was replaced (by lost or by the writer): the message still
			// arriving on the old one, which zmq4 has not seen, is lost with it.
			z.rq, rgen, msgSize = z.rq[:z.pub], gen, 0
		}
		z.compact()
		buf := z.rq
		z.rmu.Unlock()

		off := len(buf)
		frame, more, err := c.RecvFrame(append(buf, make([]byte, 9)...))
		if err == nil {
			// zmq4 holds a whole message: MaxMessageSize bounds it too.
			if msgSize += uint64(len(frame) - off - 9); msgSize > c.cfg.maxMessage() {
				err = fmt.Errorf("curve: a message of more than %d bytes: %w", c.cfg.maxMessage(), ErrTooLarge)
			}
		}
		if err != nil {
			if rerr := z.lost(gen, err); rerr != nil {
				z.rmu.Lock()
				z.rerr = rerr
				z.rdata.Broadcast()
				z.rmu.Unlock()
				return
			}
			continue
		}
		// The payload sits 9 bytes after off; a short frame's 2-byte header leaves 7 to close.
		size := len(frame) - off - 9
		hl := zmtp.HeaderSize(size)
		if hl < 9 {
			copy(frame[off+hl:], frame[off+9:])
			frame = frame[:off+hl+size]
		}
		var flags byte
		if more {
			flags = zmtp.FlagMore
		}
		zmtp.PutHeader(frame[off:], flags, size)
		z.rmu.Lock()
		z.rq = frame
		if !more {
			z.pub, msgSize = len(frame), 0
			z.rdata.Broadcast()
		}
		z.rmu.Unlock()
	}
}

// compact moves what zmq4 has yet to read to the front of rq, once zmq4 has read it all
// or 1 MiB of it, and lets go of a buffer a large message grew. Called with rmu held.
func (z *zconn) compact() {
	switch {
	case z.rpos == len(z.rq):
		if cap(z.rq) > 2*readQueueMax {
			z.rq = nil
		}
		z.rq, z.rpos, z.pub = z.rq[:0], 0, 0
	case z.rpos > 1<<20:
		n := copy(z.rq, z.rq[z.rpos:])
		z.rq, z.pub, z.rpos = z.rq[:n], z.pub-z.rpos, 0
	}
}

// lost handles a receive error: on the dial side it replaces the connection and returns
// nil; otherwise it returns the error zmq4 should see, one that makes zmq4 drop the
// connection (it wraps io.EOF).
func (z *zconn) lost(gen uint64, err error) error {
	if z.redial != nil {
		rerr := z.reconnect(gen, err)
		if rerr == nil {
			return nil
		}
		err = rerr
	}
	z.Close()
	if errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("curve: connection lost: %w (%w)", io.EOF, err)
}

// Close closes the connection (and stops any reconnection) for good. The reader goroutine
// ends even if it was waiting for zmq4 to make room.
func (z *zconn) Close() error {
	z.stopTimer()
	z.mu.Lock()
	if !z.closed {
		z.closed = true
		close(z.done)
		z.cond.Broadcast()
	}
	c := z.c
	z.mu.Unlock()
	z.rmu.Lock()
	if z.rerr == nil {
		z.rerr = fmt.Errorf("%w: %w", ErrClosed, io.EOF)
	}
	z.rdata.Broadcast()
	z.rspace.Broadcast()
	z.rmu.Unlock()
	return c.Close()
}

func (z *zconn) conn() *Conn                   { c, _ := z.current(); return c }
func (z *zconn) LocalAddr() net.Addr           { return z.conn().LocalAddr() }
func (z *zconn) RemoteAddr() net.Addr          { return z.conn().RemoteAddr() }
func (z *zconn) SetDeadline(t time.Time) error { return z.conn().SetDeadline(t) }
func (z *zconn) SetReadDeadline(t time.Time) error {
	return z.conn().SetReadDeadline(t)
}
func (z *zconn) SetWriteDeadline(t time.Time) error { return z.conn().SetWriteDeadline(t) }

// String describes the connection, never its keys.
func (z *zconn) String() string {
	return strings.Replace(z.conn().String(), "curve.Conn", "curve.zmq4Conn", 1)
}
