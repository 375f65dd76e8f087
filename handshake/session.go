package handshake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/curvezmq/curvezmq/curve/key"
)

// Inner flags of a MESSAGE's plaintext (RFC 26 reserves bits 1-7; libzmq uses bit 1 for
// commands and ignores the others on receipt, and so do we). The outer frame of a MESSAGE
// never carries MORE or COMMAND: libzmq would merge them into the message's flags.
const (
	MessageMore    = 0x01
	MessageCommand = 0x02
	messageFlags   = MessageMore | MessageCommand
)

// Session encrypts and decrypts MESSAGE commands (RFC 26, "The MESSAGE Command") after a
// successful handshake, with the box key of the two transient keys and the nonce prefixes
// "CurveZMQMESSAGEC" (client to server) and "CurveZMQMESSAGES" (server to client).
//
// Short nonces continue from the handshake: a client's first MESSAGE is 3 (HELLO was 1,
// INITIATE 2), a server's is 2 (READY was 1). Sending fails, rather than wrapping, once the
// counter reaches 2^64-1. A received nonce must be greater than the last accepted one (gaps
// are fine, as in libzmq) and is recorded only after its box opens.
//
// One goroutine may send while another receives: the two directions share nothing but the
// key and the dead flag. After any failure in either direction the session is dead, every
// later call returns the first error, and Close zeroes the key.
type Session struct {
	key        *[32]byte // behind a pointer: a Session printed by value shows no key bytes
	sendPrefix [16]byte
	recvPrefix [16]byte
	sendNonce  uint64 // last nonce sent; owned by the sending side
	recvNonce  uint64 // last nonce accepted; owned by the receiving side

	peerKey  key.PublicKey
	peerMeta Metadata

	tamper func(string, []byte) []byte // Config.Tamper, for tests and fuzzing

	dead    atomic.Bool
	errOnce sync.Once
	err     error
}

func newSession(k *[32]byte, client bool, sent, received uint64, peer key.PublicKey, meta Metadata) *Session {
	s := &Session{key: new([32]byte), sendNonce: sent, recvNonce: received, peerKey: peer, peerMeta: meta}
	*s.key = *k
	if client {
		s.sendPrefix, s.recvPrefix = prefixMessageC, prefixMessageS
	} else {
		s.sendPrefix, s.recvPrefix = prefixMessageS, prefixMessageC
	}
	return s
}

// PeerKey returns the peer's long-term public key: on a server the authenticated client's
// key, on a client the server key it was configured with.
func (s *Session) PeerKey() key.PublicKey { return s.peerKey }

// PeerMetadata returns the peer's properties: its handshake metadata and, on a server,
// User-Id and any metadata from the authorizer.
func (s *Session) PeerMetadata() Metadata { return s.peerMeta }

// SealMessage encrypts, in place, a MESSAGE command body laid out in body: body[33:] holds
// the payload, and SealMessage writes the name, the nonce, the MAC and the flags byte in
// front of it (flags is a combination of MessageMore and MessageCommand).
func (s *Session) SealMessage(body []byte, flags byte) error {
	if len(body) < MessageOverhead {
		return fmt.Errorf("handshake: MESSAGE buffer of %d bytes", len(body))
	}
	n, err := s.nextNonce(body)
	if err != nil {
		return err
	}
	body[32] = flags & messageFlags
	sealInPlace(body[16:], &n, s.key)
	return nil
}

// nextNonce takes the next send nonce, failing at 2^64-1 rather than wrapping, and writes
// the MESSAGE name and short nonce into body[:16]; it returns the full nonce.
func (s *Session) nextNonce(body []byte) ([24]byte, error) {
	if s.dead.Load() {
		return [24]byte{}, s.Err()
	}
	if s.sendNonce == math.MaxUint64 {
		return [24]byte{}, s.kill(fmt.Errorf("%w: send nonce exhausted", ErrNonce))
	}
	s.sendNonce++
	if s.tamper != nil {
		s.sendNonce = tamperNonce(s.tamper, "message-nonce", s.sendNonce)
	}
	copy(body[:8], nameMessage)
	binary.BigEndian.PutUint64(body[8:16], s.sendNonce)
	return shortNonce(&s.sendPrefix, s.sendNonce), nil
}

// SealMessageFrom writes into body (33+len(payload) bytes) a MESSAGE command body carrying
// payload with flags, encrypting payload from where it lies: one pass over the bytes, no
// copy. payload and body must not overlap.
func (s *Session) SealMessageFrom(body []byte, flags byte, payload []byte) error {
	if len(body) != MessageOverhead+len(payload) {
		return fmt.Errorf("handshake: MESSAGE buffer of %d bytes for %d", len(body), len(payload))
	}
	n, err := s.nextNonce(body)
	if err != nil {
		return err
	}
	sealTo(body[16:], flags&messageFlags, payload, &n, s.key)
	return nil
}

// OpenMessageTo checks and decrypts a MESSAGE command body, appending its payload to dst
// (one pass, no copy; body is left as it was). It returns the flags and the grown dst, and
// fails, killing the session, as OpenMessage does.
func (s *Session) OpenMessageTo(dst, body []byte) (flags byte, out []byte, err error) {
	if s.dead.Load() {
		return 0, dst, s.Err()
	}
	var m messageCmd
	if err := m.unmarshal(body); err != nil {
		return 0, dst, s.kill(err)
	}
	if m.nonce <= s.recvNonce {
		return 0, dst, s.kill(protoErr(CodeInvalidSequence, ErrNonce, "MESSAGE nonce %d after %d", m.nonce, s.recvNonce))
	}
	n := shortNonce(&s.recvPrefix, m.nonce)
	off := len(dst)
	dst = slices.Grow(dst, len(m.box)-tagSize-1)[:off+len(m.box)-tagSize-1]
	head, ok := openTo(dst[off:], m.box, &n, s.key)
	if !ok {
		return 0, dst[:off], s.kill(protoErr(CodeCryptographic, ErrCrypto, "MESSAGE box does not open"))
	}
	s.recvNonce = m.nonce
	return head & messageFlags, dst, nil
}

// Seal appends to dst a MESSAGE command body carrying payload with flags.
func (s *Session) Seal(dst []byte, flags byte, payload []byte) ([]byte, error) {
	n := len(dst)
	dst = append(dst, make([]byte, MessageOverhead)...)
	dst = append(dst, payload...)
	if err := s.SealMessage(dst[n:], flags); err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// OpenMessage checks and decrypts a MESSAGE command body in place and returns its flags and
// payload, which aliases body. It fails, killing the session, on a body that is not a
// MESSAGE, is shorter than 33 bytes, carries a nonce not greater than the last one, or does
// not open.
func (s *Session) OpenMessage(body []byte) (flags byte, payload []byte, err error) {
	if s.dead.Load() {
		return 0, nil, s.Err()
	}
	var m messageCmd
	if err := m.unmarshal(body); err != nil {
		return 0, nil, s.kill(err)
	}
	if m.nonce <= s.recvNonce {
		return 0, nil, s.kill(protoErr(CodeInvalidSequence, ErrNonce, "MESSAGE nonce %d after %d", m.nonce, s.recvNonce))
	}
	n := shortNonce(&s.recvPrefix, m.nonce)
	if !openInPlace(m.box, &n, s.key) {
		return 0, nil, s.kill(protoErr(CodeCryptographic, ErrCrypto, "MESSAGE box does not open"))
	}
	s.recvNonce = m.nonce
	return m.box[tagSize] & messageFlags, m.box[tagSize+1:], nil
}

// Err returns the error that killed the session, or nil.
func (s *Session) Err() error {
	if !s.dead.Load() {
		return nil
	}
	return s.err
}

// kill records the first error and marks the session dead.
func (s *Session) kill(err error) error {
	s.errOnce.Do(func() {
		s.err = err
		s.dead.Store(true)
	})
	return s.err
}

// ErrClosed is returned by a Session after Close.
var ErrClosed = errors.New("handshake: session closed")

// Close zeroes the session key; later calls fail with ErrClosed (or with the error that
// ended the session before, if one did). The caller must make sure no Seal or Open is
// running.
func (s *Session) Close() {
	s.kill(ErrClosed)
	clear(s.key[:])
}

// Wiped reports whether the session key is zero.
func (s *Session) Wiped() bool { return allZero(s.key[:]) }

// String describes the session, never its key.
func (s *Session) String() string {
	if s.dead.Load() {
		return "handshake.Session(dead)"
	}
	return "handshake.Session(live)"
}

// Format prints String for every verb, so no fmt verb reaches the key.
func (s *Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }
