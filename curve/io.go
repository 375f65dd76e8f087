package curve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/internal/zmtp"
)

// More sentinels and re-exported errors.
var (
	// ErrNoWelcome is returned by a client whose server closed the connection instead of
	// answering HELLO: libzmq does that when HELLO does not open, i.e. when the client
	// has the wrong server key.
	ErrNoWelcome = errors.New("curve: server closed the connection after HELLO (wrong server key?)")
	// ErrAuth is wrapped by every authentication failure; errors.As with *AuthError gives
	// the status.
	ErrAuth = handshake.ErrAuth
)

// AuthError reports a refused handshake with its ZAP status (300, 400 or 500).
type AuthError = handshake.AuthError

const syscallECONNRESET = syscall.ECONNRESET

// Send sends one message of one or more frames (parts). It returns once the frames are
// sealed and queued: a background writer puts them on the wire, coalescing frames into few
// system calls while the connection is busy. Send blocks while more than a few MiB wait to
// be written.
func (c *Conn) Send(parts ...[]byte) error {
	if len(parts) == 0 {
		return errors.New("curve: Send of an empty message")
	}
	if err := c.Handshake(context.Background()); err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, p := range parts {
		var flags byte
		if i < len(parts)-1 {
			flags = handshake.MessageMore
		}
		if err := c.queueLocked(flags, p, false); err != nil {
			return err
		}
	}
	return nil
}

// SendFrame sends one frame; more says that further frames of the same message follow.
// The frames of a message sent with SendFrame must come from one goroutine.
func (c *Conn) SendFrame(b []byte, more bool) error {
	var flags byte
	if more {
		flags = handshake.MessageMore
	}
	return c.sendFrame(b, flags)
}

func (c *Conn) sendFrame(b []byte, flags byte) error {
	if err := c.Handshake(context.Background()); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.queueLocked(flags, b, false)
}

// queueLocked seals one frame into the write buffer and wakes the writer; on a connection
// whose writer seals (sealInWriter), it queues the frame's plaintext instead. Unless force
// is set (PING and PONG, which must not wait behind data), it waits while the buffer is
// full.
func (c *Conn) queueLocked(flags byte, payload []byte, force bool) error {
	body := handshake.MessageOverhead + len(payload)
	need := zmtp.HeaderSize(body) + body
	for !force && c.werr == nil && !c.closing && len(c.wbuf) > 0 && len(c.wbuf)+need > writeHighWater {
		c.space.Wait()
	}
	if c.werr != nil {
		return c.werr
	}
	if c.closing {
		return ErrClosed
	}
	if c.sealInWriter {
		// A record for the writer to seal: flags, the payload's length, the payload.
		n := len(payload)
		c.wbuf = append(c.wbuf, flags, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		c.wbuf = append(c.wbuf, payload...)
	} else {
		off := len(c.wbuf)
		c.wbuf = slices.Grow(c.wbuf, need)[:off+need]
		hl := zmtp.PutHeader(c.wbuf[off:], 0, body) // outer flags 0x00/0x02, as libzmq
		// Sealed straight from the caller's bytes into the buffer the writer sends.
		if err := c.sess.SealMessageFrom(c.wbuf[off+hl:off+need], flags, payload); err != nil {
			c.wbuf = c.wbuf[:off]
			c.werr = err
			return err
		}
	}
	if flags&handshake.MessageCommand == 0 {
		c.midMessage = flags&handshake.MessageMore != 0
		if !c.midMessage && len(c.pending) > 0 {
			for _, cmd := range c.pending {
				if err := c.queueLocked(handshake.MessageCommand, cmd, true); err != nil {
					return err
				}
			}
			c.pending = c.pending[:0]
		}
	}
	if c.writerIdle {
		c.writerIdle = false
		c.work.Signal()
	}
	return nil
}

// queueCommand queues a command (PING, PONG) now, or after the message being sent if one
// is half-way: commands never split a multipart message.
func (c *Conn) queueCommand(body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.midMessage {
		if len(c.pending) < 16 {
			c.pending = append(c.pending, slices.Clone(body))
		}
		return nil
	}
	return c.queueLocked(handshake.MessageCommand, body, true)
}

// writeLoop writes what senders queue, swapping buffers so that sealing continues while a
// write is in the kernel. On a sealInWriter connection it seals each batch first, off every
// caller's lock and goroutine.
func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	var sealed []byte // sealInWriter: the batch being written; only the writer touches it
	defer func() { clear(sealed) }()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for {
		for len(c.wbuf) == 0 && !c.closing && c.werr == nil {
			c.writerIdle = true
			c.work.Wait()
		}
		c.writerIdle = false
		if c.werr != nil || len(c.wbuf) == 0 {
			return
		}
		out := c.wbuf
		c.wbuf = c.wspare[:0]
		c.space.Broadcast()
		c.wmu.Unlock()
		var err error
		if c.sealInWriter {
			sealed, err = c.seal(sealed[:0], out)
			clear(out) // plaintext
			if err == nil {
				err = c.write(sealed)
			}
			if cap(sealed) > 4*writeHighWater {
				sealed = nil
			}
		} else {
			err = c.write(out)
		}
		c.wmu.Lock()
		if cap(out) <= 4*writeHighWater {
			c.wspare = out[:0]
		}
		if err != nil {
			if c.closed.Load() {
				err = ErrClosed
			}
			c.werr = fmt.Errorf("curve: write: %w", err)
			c.space.Broadcast()
			return
		}
	}
}

// sendChunk is how much the writer hands the kernel per system call under a SendTimeout.
const sendChunk = 256 << 10

// write sends b for the writer. With a SendTimeout, b goes in chunks, each with a deadline
// of its own (or the user's write deadline, if sooner), so that the connection fails when
// the peer has taken none of a chunk for that long, however much is queued.
func (c *Conn) write(b []byte) error {
	d := c.cfg.SendTimeout
	if d <= 0 {
		_, err := c.conn.Write(b)
		return err
	}
	for len(b) > 0 {
		dl, ours := time.Now().Add(d), true
		if u := c.writeDL.Load(); u != 0 && u < dl.UnixNano() {
			dl, ours = time.Unix(0, u), false
		}
		c.conn.SetWriteDeadline(dl)
		if c.lingerOver.Load() {
			// Close's past deadline may have come before ours: honour it.
			return ErrClosed
		}
		n, err := c.conn.Write(b[:min(len(b), sendChunk)])
		if err != nil {
			if ours && isTimeout(err) {
				return fmt.Errorf("the peer took no data for %v: %w", d, err)
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

// seal appends to out the MESSAGE frames of the records in in (see queueLocked).
func (c *Conn) seal(out, in []byte) ([]byte, error) {
	for len(in) >= 5 {
		flags := in[0]
		n := int(binary.BigEndian.Uint32(in[1:5]))
		payload := in[5 : 5+n]
		in = in[5+n:]
		body := handshake.MessageOverhead + n
		off := len(out)
		out = slices.Grow(out, zmtp.HeaderSize(body)+body)
		hl := zmtp.HeaderSize(body)
		out = out[:off+hl+body]
		zmtp.PutHeader(out[off:], 0, body) // outer flags 0x00/0x02, as libzmq
		if err := c.sess.SealMessageFrom(out[off+hl:], flags, payload); err != nil {
			return out[:off], err
		}
	}
	return out, nil
}

// RecvFrame receives one frame, appends its payload to dst and reports whether more
// frames of the same message follow. PING, PONG and other commands are handled, not
// returned; a ZMTP 3.1 SUBSCRIBE or CANCEL arrives in the 3.0 form (0x01 or 0x00, then the
// topic). With a dst of enough capacity, receiving allocates nothing.
func (c *Conn) RecvFrame(dst []byte) (frame []byte, more bool, err error) {
	if err := c.handshakeForRecv(); err != nil {
		return dst, false, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	off := len(dst)
	for {
		flags, out, err := c.recvLocked(dst[:off])
		if err != nil {
			return dst[:off], false, err
		}
		if flags&handshake.MessageCommand == 0 {
			c.recvMore = flags&handshake.MessageMore != 0
			return out, c.recvMore, nil
		}
		// A command, decrypted into dst: a subscription is rewritten there in the 3.0
		// form; anything else is handled and dropped.
		if sub, topic, ok := zmtp.ParseSubscription(out[off:]); ok {
			if c.recvMore {
				// It would arrive as a frame of the message under way: a peer that
				// splits a message with a subscription is refused, as a broken stream.
				c.rerr = errors.New("curve: receive: a subscription inside a multipart message")
				c.conn.Close()
				return dst[:off], false, c.rerr
			}
			n := copy(out[off+1:], topic) // the topic moves down over the command's name
			out[off] = 0
			if sub {
				out[off] = 1
			}
			return out[:off+1+n], false, nil
		}
		if err := c.handleCommand(out[off:]); err != nil {
			return dst[:off], false, err
		}
		dst = out
	}
}

// Recv receives one whole message, reusing msg's slices and their capacity.
func (c *Conn) Recv(msg [][]byte) ([][]byte, error) {
	msg = msg[:0]
	for {
		var buf []byte
		if len(msg) < cap(msg) {
			buf = msg[:len(msg)+1][len(msg)][:0]
		}
		frame, more, err := c.RecvFrame(buf)
		if err != nil {
			return msg, err
		}
		msg = append(msg, frame)
		if !more {
			return msg, nil
		}
	}
}

// recvLocked reads the next MESSAGE and decrypts its payload, appending it to dst. Any
// failure kills the connection.
func (c *Conn) recvLocked(dst []byte) (flags byte, out []byte, err error) {
	if c.rerr != nil {
		return 0, dst, c.rerr
	}
	_, body, err := c.readFrame(c.cfg.maxMessage() + handshake.MessageOverhead)
	if err == nil {
		flags, dst, err = c.sess.OpenMessageTo(dst, body)
	}
	if err != nil {
		if errors.Is(err, zmtp.ErrTooLarge) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("curve: receive: %w", err)
		}
		c.rerr = err
		if !isTimeout(err) || errors.Is(err, ErrHeartbeat) {
			c.conn.Close() // a dead session: the peer must not wait
		} else {
			c.rerr = nil // a user deadline: the connection is still good
		}
		return 0, dst, err
	}
	return flags, dst, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handleCommand answers a PING with a PONG echoing its context (at most 16 bytes, never
// more than it carried), notes its TTL, and ignores PONG and unknown commands as libzmq
// does. A malformed PING kills the connection.
func (c *Conn) handleCommand(body []byte) error {
	if !zmtp.IsCommand(body, "PING") {
		return nil
	}
	ttl, ctx, err := zmtp.ParsePing(body)
	if err != nil {
		c.rerr = fmt.Errorf("curve: receive: %w", err)
		c.conn.Close()
		return c.rerr
	}
	c.peerTTL.Store(int64(ttl) * int64(100*time.Millisecond))
	var pong [5 + zmtp.MaxPingContext]byte
	return c.queueCommand(zmtp.AppendPong(pong[:0], ctx))
}

// heartbeat sends a PING every HeartbeatInterval (ZMQ_HEARTBEAT_IVL).
func (c *Conn) heartbeat() {
	defer close(c.hbDone)
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	ttl := min(c.cfg.HeartbeatTTL/(100*time.Millisecond), 0xFFFF)
	var ping [7]byte
	for {
		select {
		case <-c.hbStop:
			return
		case <-t.C:
			if c.queueCommand(zmtp.AppendPing(ping[:0], uint16(ttl), nil)) != nil {
				return
			}
		}
	}
}

// Close flushes queued messages (for up to two seconds), closes the connection, and zeroes
// every key it holds. It is safe to call more than once and concurrently with other calls.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.wmu.Lock()
		c.closing = true
		writing, writerDone, hbStop, hbDone := c.writing, c.writerDone, c.hbStop, c.hbDone
		c.work.Broadcast()
		c.space.Broadcast()
		c.wmu.Unlock()
		if writing {
			select {
			case <-writerDone:
			case <-time.After(closeLinger):
				c.lingerOver.Store(true)
				c.conn.SetWriteDeadline(time.Unix(1, 0))
				<-writerDone
			}
		}
		if hbStop != nil {
			close(hbStop)
			<-hbDone
		}
		err = c.conn.Close()
		// Wait for any handshake, receive or send in progress to let go, then wipe.
		c.hsMu.Lock()
		if c.hsc != nil {
			c.hsc.Clear()
		}
		if c.hss != nil {
			c.hss.Clear()
		}
		c.hsMu.Unlock()
		c.rmu.Lock()
		c.sendMu.Lock()
		c.wmu.Lock()
		if c.sess != nil {
			c.sess.Close()
		}
		clear(c.wbuf)
		clear(c.wspare)
		c.wmu.Unlock()
		c.sendMu.Unlock()
		clear(c.rbuf)
		c.rmu.Unlock()
		if untrack := c.takeUntrack(); untrack != nil {
			untrack()
		}
	})
	return err
}

// PeerPublicKey returns the peer's long-term public key: on a server, the authenticated
// client's; on a client, the server's. It is zero before the handshake.
func (c *Conn) PeerPublicKey() PublicKey {
	if !c.hsDone.Load() || c.hsErr != nil {
		return PublicKey{}
	}
	return c.peer.Key
}

// Peer describes the authenticated peer (zero before the handshake).
func (c *Conn) Peer() Peer {
	if !c.hsDone.Load() || c.hsErr != nil {
		return Peer{}
	}
	return c.peer
}

// PeerMetadata returns the peer's properties: its handshake metadata and, on a server,
// User-Id and any metadata from the authorizer.
func (c *Conn) PeerMetadata() Metadata { return c.Peer().Metadata }

// UserID returns the User-Id the authorizer gave the client (servers only).
func (c *Conn) UserID() string { return c.Peer().UserID }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// handshakeForRecv runs the handshake, if it has not run, for a receive: bounded by the
// read deadline too, when one is set.
func (c *Conn) handshakeForRecv() error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	ctx := context.Background()
	if dl := c.readDL.Load(); dl != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, dl))
		defer cancel()
	}
	return c.Handshake(ctx)
}

// NetConn returns the underlying connection. Writing to it or reading from it corrupts the
// session.
func (c *Conn) NetConn() net.Conn { return c.conn }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for receiving (and for a handshake started by a
// receive: one that times out fails for good, as in crypto/tls). A receive that times out
// after the handshake leaves the connection usable.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.readDL.Store(0)
	} else {
		c.readDL.Store(t.UnixNano())
	}
	if !c.hsDone.Load() {
		return nil
	}
	return c.conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for the writer's system calls. A write that times out
// leaves the session unusable, as in crypto/tls.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.writeDL.Store(0)
	} else {
		c.writeDL.Store(t.UnixNano())
	}
	return c.conn.SetWriteDeadline(t)
}

// String describes the connection, never its keys.
func (c *Conn) String() string {
	role := "server"
	if c.isClient {
		role = "client"
	}
	return fmt.Sprintf("curve.Conn(%s %s->%s)", role, c.conn.LocalAddr(), c.conn.RemoteAddr())
}

// Format prints String for every verb, so no fmt verb reaches the keys.
func (c *Conn) Format(f fmt.State, _ rune) { f.Write([]byte(c.String())) }
