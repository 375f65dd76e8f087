// Package zmtp is the ZMTP 3.x codec used by the curve package: the greeting (RFC 23 and
// RFC 37, as libzmq 4.3 sends and checks it), frames, commands, and the commands that travel
// inside an encrypted session (PING, PONG, SUBSCRIBE, CANCEL).
//
// Nothing here allocates from a peer-supplied size: every length is checked against a
// caller-given cap before a buffer is sized for it.
package zmtp

import (
	"errors"
	"fmt"
	"io"
)

// Sentinels; errors from this package wrap one of them.
var (
	// ErrVersion: the peer speaks ZMTP 1.0 or 2.0, which a secured endpoint refuses (the
	// fix for libzmq#1190/#1273: such peers would skip the security mechanism).
	ErrVersion = errors.New("zmtp: peer does not speak ZMTP 3")
	// ErrMechanism: the peer's greeting names another security mechanism.
	ErrMechanism = errors.New("zmtp: security mechanism mismatch")
	// ErrMalformed: a frame or command of the wrong shape.
	ErrMalformed = errors.New("zmtp: malformed frame")
	// ErrTooLarge: a frame larger than the cap for the current phase.
	ErrTooLarge = errors.New("zmtp: frame too large")
)

// GreetingSize is the size of a ZMTP 3 greeting.
const GreetingSize = 64

// Greeting is the part of a peer's greeting that matters (RFC 23, "Version negotiation";
// RFC 37). The padding (bytes 1-8, which libzmq fills with its routing-id size) and the
// filler are ignored, as RFC 23 asks; the as-server byte is reported but, as in libzmq,
// never decides a role.
type Greeting struct {
	Major, Minor uint8
	Mechanism    string
	AsServer     bool
}

// AppendGreeting appends our 64-byte greeting: signature, version 3.minor, the mechanism
// name padded with NULs to 20 bytes, the as-server byte and zero filler.
func AppendGreeting(dst []byte, mechanism string, minor uint8, asServer bool) []byte {
	var g [GreetingSize]byte
	g[0] = 0xFF
	g[8] = 0x01 // libzmq's "routing id size + 1" for an empty id; ignored by readers
	g[9] = 0x7F
	g[10] = 3
	g[11] = minor
	copy(g[12:32], mechanism)
	if asServer {
		g[32] = 1
	}
	return append(dst, g[:]...)
}

// ReadGreeting reads the peer's greeting from r in the order libzmq sends it (signature,
// major version, the rest), refusing a ZMTP 1.0 or 2.0 peer as soon as it can tell, and a
// mechanism other than mechanism. Our own greeting must already have been sent in full:
// libzmq sends its version only after it has seen our signature.
func ReadGreeting(r io.Reader, mechanism string) (Greeting, error) {
	var b [GreetingSize]byte
	// One byte first: a ZMTP 1.0 peer may send as little as a 2-byte identity frame and wait.
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return Greeting{}, err
	}
	if b[0] != 0xFF {
		return Greeting{}, fmt.Errorf("%w: first byte 0x%02x is not a ZMTP 3 signature", ErrVersion, b[0])
	}
	if _, err := io.ReadFull(r, b[1:10]); err != nil {
		return Greeting{}, err
	}
	if b[9]&1 == 0 {
		return Greeting{}, fmt.Errorf("%w: ZMTP 1.0 signature", ErrVersion)
	}
	if _, err := io.ReadFull(r, b[10:11]); err != nil {
		return Greeting{}, err
	}
	// libzmq: major 0 is ZMTP 1.0, 1 is ZMTP 2.0, 3 is 3.x, anything else is treated as 3.1.
	if b[10] < 2 {
		return Greeting{}, fmt.Errorf("%w: major version %d", ErrVersion, b[10])
	}
	if _, err := io.ReadFull(r, b[11:]); err != nil {
		return Greeting{}, err
	}
	return parseGreetingTail(&b, mechanism)
}

// ParseGreeting parses a whole 64-byte greeting with the same checks as ReadGreeting.
func ParseGreeting(b []byte, mechanism string) (Greeting, error) {
	if len(b) != GreetingSize {
		return Greeting{}, fmt.Errorf("%w: greeting of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != 0xFF || b[9]&1 == 0 {
		return Greeting{}, fmt.Errorf("%w: ZMTP 1.0 signature", ErrVersion)
	}
	if b[10] < 2 {
		return Greeting{}, fmt.Errorf("%w: major version %d", ErrVersion, b[10])
	}
	return parseGreetingTail((*[GreetingSize]byte)(b), mechanism)
}

func parseGreetingTail(b *[GreetingSize]byte, mechanism string) (Greeting, error) {
	var want [20]byte
	copy(want[:], mechanism)
	if [20]byte(b[12:32]) != want {
		return Greeting{}, fmt.Errorf("%w: peer offers %q, we need %q", ErrMechanism, mechName(b[12:32]), mechanism)
	}
	return Greeting{Major: b[10], Minor: b[11], Mechanism: mechanism, AsServer: b[32] == 1}, nil
}

// mechName returns a printable form of a greeting's mechanism field.
func mechName(b []byte) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	out := make([]byte, 0, n)
	for _, c := range b[:n] {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out = append(out, c)
	}
	return string(out)
}

// Is31 reports whether the peer speaks ZMTP 3.1 (libzmq: major 3 with minor 0 is 3.0, any
// other version is 3.1), which decides the form of subscriptions sent to it.
func (g Greeting) Is31() bool { return !(g.Major == 3 && g.Minor == 0) }
