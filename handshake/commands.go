package handshake

import (
	"bytes"
	"encoding/binary"
)

// One type per CurveZMQ command (RFC 26, "Commands"). Each unmarshal resets the value,
// checks the name and the size first (exactly as libzmq 4.3 does, or stricter where noted),
// reads through the bounded reader and keeps no reference to its input. Each marshal
// appends the command body (length-prefixed name and fields) to dst; framing is the
// caller's.

// Wire names with their length byte.
const (
	nameHello    = "\x05HELLO"
	nameWelcome  = "\x07WELCOME"
	nameInitiate = "\x08INITIATE"
	nameReady    = "\x05READY"
	nameError    = "\x05ERROR"
	nameMessage  = "\x07MESSAGE"
)

// Command sizes (RFC 26; libzmq's checks in curve_server.cpp and curve_client.cpp).
const (
	helloSize       = 200 // exactly
	welcomeSize     = 168 // exactly
	initiateMinSize = 257 // 9 + 96 (cookie) + 8 (nonce) + 144 (box of C, vouch nonce, vouch)
	readyMinSize    = 30  // 6 + 8 (nonce) + 16 (MAC)
	errorMinSize    = 7   // 6 + 1 (reason length)
	messageMinSize  = 33  // 8 + 8 (nonce) + 16 (MAC) + 1 (flags)

	// MessageOverhead is the number of bytes a MESSAGE adds to its payload: the name (8),
	// the short nonce (8), the MAC (16) and the flags byte (1).
	MessageOverhead = messageMinSize
)

// helloCmd is HELLO (RFC 26, "The HELLO Command"): the client's transient public key and a
// box of 64 zero bytes from it to the server's long-term key, behind 72 bytes of
// anti-amplification padding that make HELLO larger than WELCOME.
type helloCmd struct {
	clientTransient [32]byte
	nonce           uint64
	box             [80]byte
}

func (m *helloCmd) marshal(dst []byte) []byte {
	dst = append(dst, nameHello...)
	dst = append(dst, 1, 0)                // version 1.0
	dst = append(dst, make([]byte, 72)...) // padding
	dst = append(dst, m.clientTransient[:]...)
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	return append(dst, m.box[:]...)
}

// unmarshal checks the HELLO as libzmq's process_hello does (name, size 200, version 1.0)
// and, stricter than libzmq, that the padding is zero, as every implementation sends it.
func (m *helloCmd) unmarshal(b []byte) error {
	*m = helloCmd{}
	if !bytes.HasPrefix(b, []byte(nameHello)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want HELLO")
	}
	if len(b) != helloSize {
		return protoErr(CodeMalformedHello, ErrMalformed, "HELLO of %d bytes, want %d", len(b), helloSize)
	}
	r := reader(b[len(nameHello):])
	var major, minor uint8
	var padding []byte
	r.u8(&major)
	r.u8(&minor)
	if major != 1 || minor != 0 {
		return protoErr(CodeMalformedHello, ErrMalformed, "HELLO version %d.%d, want 1.0", major, minor)
	}
	r.bytes(&padding, 72)
	if !allZero(padding) {
		return protoErr(CodeMalformedHello, ErrMalformed, "HELLO padding is not zero")
	}
	if !r.copy(m.clientTransient[:]) || !r.u64(&m.nonce) || !r.copy(m.box[:]) || !r.empty() {
		*m = helloCmd{}
		return protoErr(CodeMalformedHello, ErrMalformed, "HELLO fields")
	}
	return nil
}

// welcomeCmd is WELCOME (RFC 26, "The WELCOME Command"): a 16-byte nonce tail and a box
// from the server's long-term key to the client's transient key of S' and the cookie.
type welcomeCmd struct {
	nonce [16]byte
	box   [144]byte
}

func (m *welcomeCmd) marshal(dst []byte) []byte {
	dst = append(dst, nameWelcome...)
	dst = append(dst, m.nonce[:]...)
	return append(dst, m.box[:]...)
}

// unmarshal checks the name and the exact size. libzmq reports a WELCOME of the wrong size
// as a cryptographic error, and so do we (the code); the sentinel says what it was.
func (m *welcomeCmd) unmarshal(b []byte) error {
	*m = welcomeCmd{}
	if !bytes.HasPrefix(b, []byte(nameWelcome)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want WELCOME")
	}
	if len(b) != welcomeSize {
		return protoErr(CodeCryptographic, ErrMalformed, "WELCOME of %d bytes, want %d", len(b), welcomeSize)
	}
	r := reader(b[len(nameWelcome):])
	r.copy(m.nonce[:])
	r.copy(m.box[:])
	return nil
}

// cookieSize is the size of the cookie: a 16-byte nonce tail and a secretbox of C' and s'.
const cookieSize = 96

// initiateCmd is INITIATE (RFC 26, "The INITIATE Command"): the cookie echoed, a short
// nonce, and a box from C' to S' of the client's long-term key, the vouch and metadata.
type initiateCmd struct {
	cookie [cookieSize]byte
	nonce  uint64
	box    []byte
}

func (m *initiateCmd) marshal(dst []byte) []byte {
	dst = append(dst, nameInitiate...)
	dst = append(dst, m.cookie[:]...)
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	return append(dst, m.box...)
}

// unmarshal checks the name and the minimum size of 257 (libzmq), and that the command is
// no larger than max (our pre-authentication cap). The box is copied.
func (m *initiateCmd) unmarshal(b []byte, max int) error {
	*m = initiateCmd{}
	if !bytes.HasPrefix(b, []byte(nameInitiate)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want INITIATE")
	}
	if len(b) < initiateMinSize {
		return protoErr(CodeMalformedInitiate, ErrMalformed, "INITIATE of %d bytes, want at least %d", len(b), initiateMinSize)
	}
	if len(b) > max {
		return protoErr(CodeMalformedInitiate, ErrMalformed, "INITIATE of %d bytes, limit %d", len(b), max)
	}
	r := reader(b[len(nameInitiate):])
	r.copy(m.cookie[:])
	r.u64(&m.nonce)
	m.box = bytes.Clone([]byte(r))
	return nil
}

// readyCmd is READY (RFC 26, "The READY Command"): a short nonce and a box from S' to C' of
// the server's metadata.
type readyCmd struct {
	nonce uint64
	box   []byte
}

func (m *readyCmd) marshal(dst []byte) []byte {
	dst = append(dst, nameReady...)
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	return append(dst, m.box...)
}

// unmarshal checks the name, the minimum size of 30 (libzmq) and our cap. The box is copied.
func (m *readyCmd) unmarshal(b []byte, max int) error {
	*m = readyCmd{}
	if !bytes.HasPrefix(b, []byte(nameReady)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want READY")
	}
	if len(b) < readyMinSize {
		return protoErr(CodeMalformedReady, ErrMalformed, "READY of %d bytes, want at least %d", len(b), readyMinSize)
	}
	if len(b) > max {
		return protoErr(CodeMalformedReady, ErrMalformed, "READY of %d bytes, limit %d", len(b), max)
	}
	r := reader(b[len(nameReady):])
	r.u64(&m.nonce)
	m.box = bytes.Clone([]byte(r))
	return nil
}

// errorCmd is ERROR (RFC 26, "The ERROR Command"), never encrypted: a reason of up to 255
// bytes. libzmq's server sends only "400" or "500", after its ZAP handler refused.
type errorCmd struct {
	reason string
}

func (m *errorCmd) marshal(dst []byte) []byte {
	r := m.reason
	if len(r) > 255 {
		r = r[:255]
	}
	dst = append(dst, nameError...)
	dst = append(dst, byte(len(r)))
	return append(dst, r...)
}

// unmarshal checks, as libzmq's process_error, a size of at least 7 and a reason length
// that fits; like libzmq it tolerates bytes after the reason.
func (m *errorCmd) unmarshal(b []byte) error {
	*m = errorCmd{}
	if !bytes.HasPrefix(b, []byte(nameError)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want ERROR")
	}
	if len(b) < errorMinSize {
		return protoErr(CodeMalformedError, ErrMalformed, "ERROR of %d bytes", len(b))
	}
	r := reader(b[len(nameError):])
	var n uint8
	var reason []byte
	r.u8(&n)
	if !r.bytes(&reason, int(n)) {
		return protoErr(CodeMalformedError, ErrMalformed, "ERROR reason of %d bytes overruns the command", n)
	}
	m.reason = string(reason)
	return nil
}

// messageCmd is MESSAGE (RFC 26, "The MESSAGE Command"): a short nonce and a box, under the
// session key, of one flags byte (0x01 MORE, 0x02 COMMAND) and the payload. The box
// aliases the input: MESSAGEs are opened in place.
type messageCmd struct {
	nonce uint64
	box   []byte
}

func (m *messageCmd) marshal(dst []byte) []byte {
	dst = append(dst, nameMessage...)
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	return append(dst, m.box...)
}

// unmarshal checks the name and the minimum size of 33, as libzmq's check_validity.
func (m *messageCmd) unmarshal(b []byte) error {
	*m = messageCmd{}
	if !bytes.HasPrefix(b, []byte(nameMessage)) {
		return protoErr(CodeUnexpectedCommand, ErrUnexpectedCommand, "want MESSAGE")
	}
	if len(b) < messageMinSize {
		return protoErr(CodeMalformedMessage, ErrMalformed, "MESSAGE of %d bytes, want at least %d", len(b), messageMinSize)
	}
	m.nonce = binary.BigEndian.Uint64(b[8:16])
	m.box = b[16:]
	return nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
