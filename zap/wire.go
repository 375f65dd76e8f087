package zap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// The ZAP wire protocol (RFC 27) on a socket of its own, for tools that speak it.
//
// libzmq reaches its ZAP handler over inproc://zeromq.zap.01 in the same context, which
// no other process can reach, so this is not for libzmq servers: it is for tools that
// send ZAP requests themselves, such as a command that asks a running scheduler whether
// it would let a key in. The server is a REP socket with the NULL mechanism, written here
// with bounded reads rather than on zmq4, whose NULL sockets allocate whatever frame size
// a peer announces.

// Limits of a WireServer. A peer that breaks one is disconnected.
const (
	// WireMaxConns is how many connections a WireServer serves at once; more are closed
	// as soon as they are accepted.
	WireMaxConns = 64
	// WireMaxFrame is the largest frame a peer may send (a ZAP request's frames are a few
	// dozen bytes; libzmq's routing ids are at most 255).
	WireMaxFrame = 4096
	// WireMaxFrames is the most frames a message may have, envelope included.
	WireMaxFrames = 16
	// WireHandshakeTimeout bounds the ZMTP greeting and READY exchange.
	WireHandshakeTimeout = 10 * time.Second
	// WireIdleTimeout closes a connection that sends nothing for this long (a libzmq
	// REQ socket reconnects by itself).
	WireIdleTimeout = 5 * time.Minute
	// WireRequestTimeout bounds each decision (a callback's context carries it) and the
	// write of its reply.
	WireRequestTimeout = 10 * time.Second
)

// WireServer answers ZAP requests (RFC 27) with an [Authenticator]'s decisions, on a
// ZMTP 3 REP socket with the NULL mechanism. Start one with [Authenticator.ServeZAP].
//
// Requests are validated as pyzmq's Authenticator does: fewer than six frames get 400
// "Not enough frames" (no reply without a request id), a version other than "1.0" gets
// 400 "Invalid version", and CURVE needs exactly one credentials frame holding a 32-byte
// key, else 400 "Invalid credentials". The reply has the six frames libzmq expects:
// version "1.0", the request id, the status code, the status text, the user id (empty
// unless 200) and the ZAP metadata. Only CURVE is supported; other mechanisms get 400
// "Unsupported mechanism" (after the address lists, as in pyzmq).
type WireServer struct {
	a        *Authenticator
	ln       net.Listener
	endpoint string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ServeZAP serves a's decisions over the ZAP wire protocol on endpoint, which is
// "tcp://ADDR:PORT" with a loopback address (port 0 picks one), or "ipc://PATH" for a
// Unix socket. ZAP carries no authentication of its own, so other addresses are refused:
// whoever can connect can ask about any key. Close the WireServer when done; closing the
// Authenticator does not close it (its decisions become 500).
func (a *Authenticator) ServeZAP(endpoint string) (*WireServer, error) {
	if a.closed.Load() {
		return nil, ErrClosed
	}
	network, addr, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok:
		return nil, fmt.Errorf("zap: endpoint %q is not tcp://ADDR:PORT or ipc://PATH", endpoint)
	case network == "tcp":
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("zap: endpoint %q: %w", endpoint, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("zap: endpoint %q: ZAP is served on loopback addresses only", endpoint)
		}
	case network == "ipc":
		network = "unix"
	default:
		return nil, fmt.Errorf("zap: endpoint %q: transport %q is not tcp or ipc", endpoint, network)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("zap: %w", err)
	}
	w := &WireServer{a: a, ln: ln, conns: map[net.Conn]struct{}{}}
	if network == "unix" {
		w.endpoint = "ipc://" + ln.Addr().String()
	} else {
		w.endpoint = "tcp://" + ln.Addr().String()
	}
	w.wg.Go(w.acceptLoop)
	return w, nil
}

// Endpoint returns the endpoint the server listens on, with the port it got.
func (w *WireServer) Endpoint() string { return w.endpoint }

// Close stops listening, closes every connection and waits for their goroutines.
func (w *WireServer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.ln.Close()
	for c := range w.conns {
		c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
	return err
}

func (w *WireServer) acceptLoop() {
	delay := time.Duration(0)
	for {
		c, err := w.ln.Accept()
		if err != nil {
			w.mu.Lock()
			closed := w.closed
			w.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// A temporary failure (out of file descriptors): back off, bounded.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		w.mu.Lock()
		if w.closed || len(w.conns) >= WireMaxConns {
			w.mu.Unlock()
			c.Close()
			continue
		}
		w.conns[c] = struct{}{}
		w.mu.Unlock()
		w.wg.Go(func() {
			defer func() {
				w.mu.Lock()
				delete(w.conns, c)
				w.mu.Unlock()
				c.Close()
			}()
			if err := w.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				w.a.log.Debug("zap: ZAP connection ended", "peer", c.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// wireConn is one ZMTP NULL connection of a WireServer.
type wireConn struct {
	c   net.Conn
	r   *bufio.Reader
	hdr [9]byte
}

// serve runs the NULL handshake, then answers requests until the peer goes.
func (w *WireServer) serve(c net.Conn) error {
	wc := &wireConn{c: c, r: bufio.NewReaderSize(c, 512)}
	if err := wc.handshake(); err != nil {
		return err
	}
	for {
		c.SetReadDeadline(time.Now().Add(WireIdleTimeout))
		msg, err := wc.readMessage()
		if err != nil {
			return err
		}
		// REP: the envelope runs up to and including the first empty frame.
		delim := -1
		for i, f := range msg {
			if len(f) == 0 {
				delim = i
				break
			}
		}
		if delim < 0 {
			continue // not a request (libzmq's REP drops it too)
		}
		reply := w.answer(msg[delim+1:])
		if reply == nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(WireRequestTimeout))
		if err := wc.writeMessage(append(msg[:delim+1:delim+1], reply...)); err != nil {
			return err
		}
	}
}

// handshake exchanges greetings (in the order libzmq needs: see zmtp.GreetingHead) and
// READY commands; the peer must be a REQ or DEALER socket with the NULL mechanism.
func (wc *wireConn) handshake() error {
	wc.c.SetDeadline(time.Now().Add(WireHandshakeTimeout))
	defer wc.c.SetDeadline(time.Time{})
	greeting := zmtp.AppendGreeting(nil, "NULL", 0, false)
	if _, err := wc.c.Write(greeting[:zmtp.GreetingHead]); err != nil {
		return err
	}
	var theirs [zmtp.GreetingSize]byte
	if err := zmtp.ReadGreetingHead(wc.r, &theirs); err != nil {
		return err
	}
	if _, err := wc.c.Write(greeting[zmtp.GreetingHead:]); err != nil {
		return err
	}
	if _, err := zmtp.ReadGreetingRest(wc.r, &theirs, "NULL"); err != nil {
		return err
	}
	meta, err := handshake.Metadata{{Name: handshake.PropSocketType, Value: []byte("REP")}}.Append(nil)
	if err != nil {
		return err
	}
	if _, err := wc.c.Write(zmtp.AppendCommand(nil, "READY", meta)); err != nil {
		return err
	}
	flags, body, err := wc.readFrame()
	if err != nil {
		return err
	}
	name, data, err := zmtp.ParseCommand(body)
	if err != nil || flags&zmtp.FlagCommand == 0 || name != "READY" {
		return fmt.Errorf("zap: ZAP peer sent no READY: %w", zmtp.ErrMalformed)
	}
	props, err := handshake.ParseMetadata(data)
	if err != nil {
		return err
	}
	if st, _ := props.Get(handshake.PropSocketType); string(st) != "REQ" && string(st) != "DEALER" {
		return fmt.Errorf("zap: ZAP peer is a %q socket, not REQ or DEALER: %w", truncateName(st), zmtp.ErrMalformed)
	}
	return nil
}

func truncateName(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return strconv.QuoteToASCII(string(b))
}

// readFrame reads one frame of at most WireMaxFrame bytes.
func (wc *wireConn) readFrame() (flags byte, body []byte, err error) {
	if _, err := io.ReadFull(wc.r, wc.hdr[:2]); err != nil {
		return 0, nil, err
	}
	n := 2
	if wc.hdr[0]&zmtp.FlagLong != 0 {
		if _, err := io.ReadFull(wc.r, wc.hdr[2:9]); err != nil {
			return 0, nil, err
		}
		n = 9
	}
	flags, size, _, err := zmtp.ParseHeader(wc.hdr[:n], WireMaxFrame)
	if err != nil {
		return 0, nil, err
	}
	body = make([]byte, size)
	if _, err := io.ReadFull(wc.r, body); err != nil {
		return 0, nil, err
	}
	return flags, body, nil
}

// readMessage reads the next message, answering PINGs and skipping other commands.
func (wc *wireConn) readMessage() ([][]byte, error) {
	var msg [][]byte
	for {
		flags, body, err := wc.readFrame()
		if err != nil {
			return nil, err
		}
		if flags&zmtp.FlagCommand != 0 {
			if len(msg) != 0 {
				return nil, fmt.Errorf("zap: command inside a message: %w", zmtp.ErrMalformed)
			}
			if _, ctx, err := zmtp.ParsePing(body); err == nil {
				wc.c.SetWriteDeadline(time.Now().Add(WireRequestTimeout))
				if _, err := wc.c.Write(zmtp.AppendCommand(nil, "PONG", ctx)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if len(msg) == WireMaxFrames {
			return nil, fmt.Errorf("zap: message of more than %d frames: %w", WireMaxFrames, zmtp.ErrTooLarge)
		}
		msg = append(msg, body)
		if flags&zmtp.FlagMore == 0 {
			return msg, nil
		}
	}
}

// writeMessage writes msg in one write.
func (wc *wireConn) writeMessage(msg [][]byte) error {
	var b []byte
	for i, f := range msg {
		var flags byte
		if i < len(msg)-1 {
			flags = zmtp.FlagMore
		}
		b = zmtp.AppendHeader(b, flags, len(f))
		b = append(b, f...)
	}
	_, err := wc.c.Write(b)
	return err
}

// answer validates a ZAP request (the frames after the envelope) as pyzmq does and
// returns the reply frames, or nil when there is no request id to answer.
func (w *WireServer) answer(req [][]byte) [][]byte {
	if len(req) < 6 {
		if len(req) < 2 {
			w.a.log.Debug("zap: ZAP request without a request id", "frames", len(req))
			return nil
		}
		return wireReply(req[1], handshake.StatusDenied, "Not enough frames", "", nil)
	}
	version, id, domain, address, identity, mechanism := req[0], req[1], req[2], req[3], req[4], req[5]
	creds := req[6:]
	if string(version) != "1.0" {
		return wireReply(id, handshake.StatusDenied, "Invalid version", "", nil)
	}
	r := &handshake.Request{Domain: string(domain), Address: string(address), Identity: identity, Mechanism: string(mechanism)}
	if r.Mechanism == "CURVE" {
		if len(creds) != 1 || len(creds[0]) != key.Size {
			return wireReply(id, handshake.StatusDenied, "Invalid credentials", "", nil)
		}
		r.ClientKey = key.PublicKey(creds[0])
		if r.ClientKey.Check() != nil {
			return wireReply(id, handshake.StatusDenied, "Invalid credentials", "", nil)
		}
	} else if r.Mechanism == "" {
		r.Mechanism = "NULL" // Authorize takes an empty mechanism for CURVE; ZAP's is named
	}
	ctx, cancel := context.WithTimeout(context.Background(), WireRequestTimeout)
	defer cancel()
	res := w.a.Authorize(ctx, r)
	var meta []byte
	if res.Status == handshake.StatusOK && len(res.Metadata) != 0 {
		var err error
		if meta, err = res.Metadata.Append(nil); err != nil {
			res = handshake.Result{Status: handshake.StatusInternalError, StatusText: "Internal error"}
		}
	}
	return wireReply(id, res.Status, res.StatusText, res.UserID, meta)
}

func wireReply(id []byte, status int, text, userID string, meta []byte) [][]byte {
	switch status {
	case handshake.StatusOK, handshake.StatusTemporary, handshake.StatusDenied, handshake.StatusInternalError:
	default:
		status = handshake.StatusInternalError
	}
	if status != handshake.StatusOK {
		userID, meta = "", nil
	}
	return [][]byte{[]byte("1.0"), id, []byte(strconv.Itoa(status)), []byte(text), []byte(userID), meta}
}
