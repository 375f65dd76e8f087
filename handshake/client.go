package handshake

import (
	"bytes"
	"fmt"
	"io"

	"github.com/curvezmq/curvezmq/curve/key"
)

// Client is the client side of one CurveZMQ handshake (RFC 26): Hello, then ReadWelcome,
// then ReadReady, which returns the Session. Every step checks the state first, computes
// into locals and commits only on success; any failure wipes every secret, moves to a
// terminal failed state and is returned again by later calls.
//
// The transient secret key and the handshake box keys are zeroed as soon as they are no
// longer needed: the HELLO key once WELCOME is open, the transient secret once INITIATE is
// sealed, and everything else when READY or ERROR arrives, on failure and on Clear.
type Client struct {
	cfg   *Config
	state state
	err   error

	transient       key.KeyPair // c' and C'
	helloKey        [32]byte    // box key of c' and S: HELLO and WELCOME
	sessionKey      [32]byte    // box key of c' and S': INITIATE, READY, MESSAGE
	serverTransient key.PublicKey
	nonce           uint64 // last short nonce sent
	peerMeta        Metadata
}

// NewClient returns the client side of a handshake with cfg, which needs KeyPair and
// ServerKey.
func NewClient(cfg *Config) (*Client, error) {
	if err := cfg.check(true); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Hello appends a HELLO command body to dst (RFC 26, "The HELLO Command").
func (c *Client) Hello(dst []byte) ([]byte, error) {
	if err := c.expect(stateStart); err != nil {
		return dst, err
	}
	t, err := c.cfg.transient()
	if err != nil {
		return dst, c.fail(fmt.Errorf("handshake: transient key: %w", err))
	}
	c.transient = t
	t.Wipe()
	if err := key.Precompute(&c.helloKey, &c.cfg.ServerKey, &c.transient.Secret); err != nil {
		return dst, c.fail(fmt.Errorf("%w: server key", ErrBadKey))
	}
	c.nonce = tamperNonce(c.cfg.Tamper, "hello-nonce", 1)
	m := helloCmd{clientTransient: c.transient.Public, nonce: c.nonce}
	n := shortNonce(&prefixHello, c.nonce)
	var zeros [64]byte
	box := seal(nil, c.cfg.tamper("hello-plain", zeros[:]), &n, &c.helloKey)
	if len(box) != len(m.box) {
		return dst, c.fail(fmt.Errorf("%w: HELLO box of %d bytes", ErrState, len(box)))
	}
	copy(m.box[:], box)
	c.state = stateWelcome
	return m.marshal(dst), nil
}

// ReadWelcome consumes a WELCOME (or ERROR) command body and appends the INITIATE command
// body to dst (RFC 26, "The WELCOME Command", "The INITIATE Command"). An ERROR gives an
// *AuthError.
func (c *Client) ReadWelcome(dst, body []byte) ([]byte, error) {
	if err := c.expect(stateWelcome); err != nil {
		return dst, err
	}
	if bytes.HasPrefix(body, []byte(nameError)) {
		return dst, c.fail(readError(body))
	}
	var w welcomeCmd
	if err := w.unmarshal(body); err != nil {
		return dst, c.fail(err)
	}
	n := longNonce(&prefixWelcome, &w.nonce)
	plain, ok := open(w.box[:], &n, &c.helloKey)
	clear(c.helloKey[:])
	if !ok {
		return dst, c.fail(protoErr(CodeCryptographic, ErrCrypto, "WELCOME box does not open (wrong server key?)"))
	}
	copy(c.serverTransient[:], plain[:32])
	var cookie [cookieSize]byte
	copy(cookie[:], plain[32:])
	clear(plain)
	if err := key.Precompute(&c.sessionKey, &c.serverTransient, &c.transient.Secret); err != nil {
		return dst, c.fail(protoErr(CodeCryptographic, ErrBadKey, "server transient key"))
	}
	// The vouch: a box from our long-term key to S' of C' and S (RFC 26, "The INITIATE
	// Command"), proving that whoever holds our long-term secret made this transient key.
	var vouchKey [32]byte
	if err := key.Precompute(&vouchKey, &c.serverTransient, &c.cfg.KeyPair.Secret); err != nil {
		return dst, c.fail(protoErr(CodeCryptographic, ErrBadKey, "server transient key"))
	}
	var vouchTail [16]byte
	if _, err := io.ReadFull(c.cfg.rand(), vouchTail[:]); err != nil {
		clear(vouchKey[:])
		return dst, c.fail(fmt.Errorf("handshake: randomness: %w", err))
	}
	vn := longNonce(&prefixVouch, &vouchTail)
	var vouchPlain [64]byte
	copy(vouchPlain[:32], c.transient.Public[:])
	copy(vouchPlain[32:], c.cfg.ServerKey[:])
	plainInit := make([]byte, 0, 128+c.cfg.Metadata.Size())
	plainInit = append(plainInit, c.cfg.KeyPair.Public[:]...)
	plainInit = append(plainInit, vouchTail[:]...)
	plainInit = seal(plainInit, c.cfg.tamper("vouch-plain", vouchPlain[:]), &vn, &vouchKey)
	clear(vouchKey[:])
	plainInit, err := c.cfg.Metadata.Append(plainInit)
	if err != nil {
		return dst, c.fail(err)
	}
	// The transient secret has done its work: what follows needs only the session key.
	c.transient.Secret.Wipe()
	c.nonce = tamperNonce(c.cfg.Tamper, "initiate-nonce", c.nonce+1)
	m := initiateCmd{cookie: cookie, nonce: c.nonce}
	in := shortNonce(&prefixInitiate, c.nonce)
	plainInit = c.cfg.tamper("initiate-plain", plainInit)
	m.box = seal(make([]byte, 0, tagSize+len(plainInit)), plainInit, &in, &c.sessionKey)
	c.state = stateReady
	return m.marshal(dst), nil
}

// ReadReady consumes a READY (or ERROR) command body (RFC 26, "The READY Command") and
// returns the Session, which from then on owns the session key. An ERROR gives an
// *AuthError. Either way the handshake's secrets are wiped.
func (c *Client) ReadReady(body []byte) (*Session, error) {
	if err := c.expect(stateReady); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(body, []byte(nameError)) {
		return nil, c.fail(readError(body))
	}
	var r readyCmd
	if err := r.unmarshal(body, readyMinSize+c.cfg.maxMetadata()); err != nil {
		return nil, c.fail(err)
	}
	n := shortNonce(&prefixReady, r.nonce)
	plain, ok := open(r.box, &n, &c.sessionKey)
	if !ok {
		return nil, c.fail(protoErr(CodeCryptographic, ErrCrypto, "READY box does not open"))
	}
	meta, err := ParseMetadata(plain)
	if err != nil {
		return nil, c.fail(protoErr(CodeInvalidMetadata, ErrMalformed, "READY metadata: %v", err))
	}
	c.peerMeta = meta
	s := newSession(&c.sessionKey, true, c.nonce, r.nonce, c.cfg.ServerKey, meta)
	s.tamper = c.cfg.Tamper
	c.state = stateDone
	c.Clear()
	return s, nil
}

// PeerMetadata returns the server's metadata from READY.
func (c *Client) PeerMetadata() Metadata { return c.peerMeta }

// Err returns the error that ended the handshake, if any.
func (c *Client) Err() error { return c.err }

// Clear zeroes every secret the handshake holds; a handshake that was not done fails.
func (c *Client) Clear() {
	c.transient.Secret.Wipe()
	clear(c.helloKey[:])
	clear(c.sessionKey[:])
	if c.state != stateDone && c.state != stateFailed {
		c.state = stateFailed
		c.err = fmt.Errorf("%w: handshake cleared", ErrState)
	}
}

// Wiped reports whether every secret the handshake held is zero (the transient secret key
// and the HELLO and session box keys). The long-term keys belong to the Config.
func (c *Client) Wiped() bool {
	return c.transient.Secret.IsZero() && allZero(c.helloKey[:]) && allZero(c.sessionKey[:])
}

// String describes the handshake's state, never its secrets.
func (c *Client) String() string { return "handshake.Client(" + c.state.String() + ")" }

// Format prints String for every verb, so no fmt verb reaches the secret fields.
func (c *Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

func (c *Client) expect(s state) error {
	if c.state == stateFailed {
		return c.err
	}
	if c.state != s {
		return c.fail(fmt.Errorf("%w: client is in state %s, not %s", ErrState, c.state, s))
	}
	return nil
}

func (c *Client) fail(err error) error {
	c.state = stateFailed
	c.err = err
	c.Clear()
	return err
}

// readError turns an ERROR command into the error the client reports: an *AuthError for a
// well-formed ERROR (libzmq's HANDSHAKE_FAILED_AUTH when the reason is 300, 400 or 500),
// a protocol error otherwise.
func readError(body []byte) error {
	var e errorCmd
	if err := e.unmarshal(body); err != nil {
		return err
	}
	switch e.reason {
	case "300":
		return &AuthError{Status: StatusTemporary}
	case "400":
		return &AuthError{Status: StatusDenied}
	case "500":
		return &AuthError{Status: StatusInternalError}
	}
	return &AuthError{Reason: printable(e.reason)}
}

// printable replaces non-printable bytes of a peer-supplied string.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
