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

	*clientSecrets                 // behind a pointer: a Client printed by value shows none
	transientDH     *key.Agreement // c', ready for agreements
	longTermDH      *key.Agreement // c, ready for the vouch
	serverTransient key.PublicKey
	nonce           uint64 // last short nonce sent
	peerMeta        Metadata
	prepared        bool // the transient key and the HELLO key are ready
	ownLongTerm     bool // longTermDH was made by this handshake
}

// clientSecrets are a Client's secret keys.
type clientSecrets struct {
	transient  key.KeyPair // c' and C'
	helloKey   [32]byte    // box key of c' and S: HELLO and WELCOME
	sessionKey [32]byte    // box key of c' and S': INITIATE, READY, MESSAGE
}

// NewClient returns the client side of a handshake with cfg, which needs KeyPair and
// ServerKey.
func NewClient(cfg *Config) (*Client, error) {
	if err := cfg.check(true); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, clientSecrets: new(clientSecrets)}, nil
}

// Prepare makes, ahead of Hello, all that needs nothing from the server: the transient key
// pair, the HELLO box key, and the long-term key made ready for the vouch; three scalar
// multiplications. It is optional (Hello does it otherwise) and may run in another
// goroutine while the connection is being set up, but not concurrently with any other
// method.
func (c *Client) Prepare() error {
	if err := c.expect(stateStart); err != nil || c.prepared {
		return err
	}
	t, ta, la, owned, err := c.cfg.prepare()
	if err != nil {
		return c.fail(err)
	}
	c.transient, c.transientDH, c.longTermDH, c.ownLongTerm = t, ta, la, owned
	t.Wipe()
	if err := c.transientDH.Precompute(&c.helloKey, &c.cfg.ServerKey); err != nil {
		return c.fail(fmt.Errorf("%w: server key", ErrBadKey))
	}
	c.prepared = true
	return nil
}

// Hello appends a HELLO command body to dst (RFC 26, "The HELLO Command").
func (c *Client) Hello(dst []byte) ([]byte, error) {
	if err := c.Prepare(); err != nil {
		return dst, err
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
	// The session key (c', S') and the vouch key (c, S') are independent: compute them at
	// once on two cores, which takes one scalar multiplication off the handshake's path.
	// The vouch is a box from our long-term key to S' of C' and S (RFC 26, "The INITIATE
	// Command"), proving that whoever holds our long-term secret made this transient key.
	var vouchKey [32]byte
	var sessErr, vouchErr error
	parallel(
		func() { sessErr = c.transientDH.Precompute(&c.sessionKey, &c.serverTransient) },
		func() { vouchErr = c.longTermDH.Precompute(&vouchKey, &c.serverTransient) },
	)
	if sessErr != nil || vouchErr != nil {
		clear(vouchKey[:])
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
	// The transient and long-term secrets have done their work: what follows needs only
	// the session key.
	c.transient.Secret.Wipe()
	c.transientDH.Wipe()
	dropLongTerm(&c.longTermDH, c.ownLongTerm)
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
	c.transientDH.Wipe()
	dropLongTerm(&c.longTermDH, c.ownLongTerm)
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
	return c.transient.Secret.IsZero() && allZero(c.helloKey[:]) && allZero(c.sessionKey[:]) &&
		wiped(c.transientDH) && wiped(c.longTermDH)
}

// String describes the handshake's state, never its secrets.
func (c *Client) String() string { return "handshake.Client(" + c.state.String() + ")" }

// Format prints String for every verb, so no fmt verb reaches the secret fields; its value
// receiver covers a Client printed by value too.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

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
