package handshake

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/curvezmq/curvezmq/curve/key"
)

// Server is the server side of one CurveZMQ handshake (RFC 26): ReadHello, then
// ReadInitiate, which returns the Request to put to the authorizer, then Answer with the
// authorizer's Result, which gives READY and the Session, or ERROR.
//
// As in libzmq the cookie key is random per connection and the server keeps its transient
// secret until INITIATE; unlike libzmq, both are zeroed as soon as INITIATE is verified,
// and the HELLO box key as soon as WELCOME is sealed. Any failure wipes everything, moves
// to a terminal failed state and is returned again by later calls.
type Server struct {
	cfg   *Config
	state state
	err   error

	*serverSecrets                 // behind a pointer: a Server printed by value shows none
	transientDH     *key.Agreement // s', ready for agreements
	longTermDH      *key.Agreement // s, ready for HELLO
	clientTransient key.PublicKey
	clientKey       key.PublicKey
	peerNonce       uint64 // the INITIATE short nonce: MESSAGEs must exceed it
	peerMeta        Metadata
	prepared        bool // the transient key pair is ready
	ownLongTerm     bool // longTermDH was made by this handshake
	sessionReady    bool // the session key is ready
}

// serverSecrets are a Server's secret keys.
type serverSecrets struct {
	transient  key.KeyPair // s' and S'
	cookieKey  [32]byte    // secretbox key of the cookie, this connection only
	sessionKey [32]byte    // box key of s' and C'
}

// NewServer returns the server side of a handshake with cfg, which needs KeyPair.
func NewServer(cfg *Config) (*Server, error) {
	if err := cfg.check(false); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, serverSecrets: new(serverSecrets)}, nil
}

// Prepare makes, ahead of ReadHello, the transient key pair and the long-term key ready for
// HELLO (two scalar multiplications). It is optional (ReadHello does it otherwise) and may
// run in another goroutine while the greeting and HELLO are on their way, but not
// concurrently with any other method.
func (s *Server) Prepare() error {
	if err := s.expect(stateStart); err != nil || s.prepared {
		return err
	}
	t, ta, la, owned, err := s.cfg.prepare()
	if err != nil {
		return s.fail(err)
	}
	s.transient, s.transientDH, s.longTermDH, s.ownLongTerm = t, ta, la, owned
	t.Wipe()
	s.prepared = true
	return nil
}

// PrepareSession computes, ahead of ReadInitiate, the session key from the client's
// transient key (sent in HELLO) and ours: a scalar multiplication that can then run while
// the client works on INITIATE. It is optional (ReadInitiate does it otherwise) and may run
// in another goroutine, but not concurrently with any other method. The key is wiped with
// everything else if INITIATE does not verify.
func (s *Server) PrepareSession() error {
	if err := s.expect(stateInitiate); err != nil || s.sessionReady {
		return err
	}
	if err := s.transientDH.Precompute(&s.sessionKey, &s.clientTransient); err != nil {
		return s.fail(protoErr(CodeCryptographic, ErrBadKey, "client transient key"))
	}
	s.sessionReady = true
	return nil
}

// ReadHello consumes a HELLO command body and appends the WELCOME command body to dst
// (RFC 26, "The HELLO Command", "The WELCOME Command").
func (s *Server) ReadHello(dst, body []byte) ([]byte, error) {
	if err := s.expect(stateStart); err != nil {
		return dst, err
	}
	var h helloCmd
	if err := h.unmarshal(body); err != nil {
		return dst, s.fail(err)
	}
	if err := s.Prepare(); err != nil {
		return dst, err
	}
	var helloKey [32]byte
	s.clientTransient = h.clientTransient
	if err := s.longTermDH.Precompute(&helloKey, &s.clientTransient); err != nil {
		return dst, s.fail(protoErr(CodeCryptographic, ErrBadKey, "client transient key"))
	}
	n := shortNonce(&prefixHello, h.nonce)
	plain, ok := open(h.box[:], &n, &helloKey)
	// Stricter than libzmq, which checks only the MAC: the signature box holds 64 zeros.
	if !ok || !allZero(plain) {
		clear(helloKey[:])
		return dst, s.fail(protoErr(CodeCryptographic, ErrCrypto, "HELLO box does not open (client has the wrong server key?)"))
	}
	dropLongTerm(&s.longTermDH, s.ownLongTerm)
	var tails [32]byte // cookie nonce tail, WELCOME nonce tail
	if _, err := io.ReadFull(s.cfg.rand(), s.cookieKey[:]); err != nil {
		clear(helloKey[:])
		return dst, s.fail(fmt.Errorf("handshake: randomness: %w", err))
	}
	if _, err := io.ReadFull(s.cfg.rand(), tails[:]); err != nil {
		clear(helloKey[:])
		return dst, s.fail(fmt.Errorf("handshake: randomness: %w", err))
	}
	// Cookie: nonce tail ‖ secretbox(C' ‖ s') under the cookie key.
	var cookiePlain [64]byte
	copy(cookiePlain[:32], s.clientTransient[:])
	copy(cookiePlain[32:], s.transient.Secret.UnsafeBytes()[:])
	cookieTail := [16]byte(tails[:16])
	cn := longNonce(&prefixCookie, &cookieTail)
	welcomePlain := make([]byte, 0, 32+cookieSize)
	welcomePlain = append(welcomePlain, s.transient.Public[:]...)
	welcomePlain = append(welcomePlain, cookieTail[:]...)
	welcomePlain = seal(welcomePlain, s.cfg.tamper("cookie-plain", cookiePlain[:]), &cn, &s.cookieKey)
	clear(cookiePlain[:])
	w := welcomeCmd{nonce: [16]byte(tails[16:])}
	wn := longNonce(&prefixWelcome, &w.nonce)
	box := seal(nil, s.cfg.tamper("welcome-plain", welcomePlain), &wn, &helloKey)
	clear(helloKey[:])
	if len(box) != len(w.box) {
		return dst, s.fail(fmt.Errorf("%w: WELCOME box of %d bytes", ErrState, len(box)))
	}
	copy(w.box[:], box)
	s.state = stateInitiate
	return w.marshal(dst), nil
}

// ReadInitiate consumes an INITIATE command body (RFC 26, "The INITIATE Command"): it
// opens the cookie and checks that it holds this connection's C' and s', opens the box,
// checks both halves of the vouch (libzmq compares only C'; we compare S too), and parses
// the client's metadata. It returns the Request for the authorizer, without Address,
// which only the caller knows. The transient secret and cookie key are wiped here.
func (s *Server) ReadInitiate(body []byte) (*Request, error) {
	if err := s.expect(stateInitiate); err != nil {
		return nil, err
	}
	var m initiateCmd
	if err := m.unmarshal(body, initiateMinSize+s.cfg.maxMetadata()); err != nil {
		return nil, s.fail(err)
	}
	cookieTail := [16]byte(m.cookie[:16])
	cn := longNonce(&prefixCookie, &cookieTail)
	cookiePlain, ok := open(m.cookie[16:], &cn, &s.cookieKey)
	clear(s.cookieKey[:])
	if !ok {
		return nil, s.fail(protoErr(CodeCryptographic, ErrCrypto, "cookie does not open"))
	}
	match := subtle.ConstantTimeCompare(cookiePlain[:32], s.clientTransient[:]) &
		subtle.ConstantTimeCompare(cookiePlain[32:], s.transient.Secret.UnsafeBytes()[:])
	clear(cookiePlain)
	if match != 1 {
		return nil, s.fail(protoErr(CodeCryptographic, ErrCrypto, "cookie is not this connection's"))
	}
	if !s.sessionReady {
		if err := s.transientDH.Precompute(&s.sessionKey, &s.clientTransient); err != nil {
			return nil, s.fail(protoErr(CodeCryptographic, ErrBadKey, "client transient key"))
		}
	}
	n := shortNonce(&prefixInitiate, m.nonce)
	plain, ok := open(m.box, &n, &s.sessionKey)
	if !ok {
		return nil, s.fail(protoErr(CodeCryptographic, ErrCrypto, "INITIATE box does not open"))
	}
	r := reader(plain)
	var clientKey key.PublicKey
	var vouchTail [16]byte
	var vouchBox []byte
	if !r.copy(clientKey[:]) || !r.copy(vouchTail[:]) || !r.bytes(&vouchBox, 80) {
		return nil, s.fail(protoErr(CodeMalformedInitiate, ErrMalformed, "INITIATE box too short"))
	}
	var vouchKey [32]byte
	if err := s.transientDH.Precompute(&vouchKey, &clientKey); err != nil {
		return nil, s.fail(protoErr(CodeCryptographic, ErrBadKey, "client long-term key is all zeros or of small order"))
	}
	vn := longNonce(&prefixVouch, &vouchTail)
	vouch, ok := open(vouchBox, &vn, &vouchKey)
	clear(vouchKey[:])
	// The transient secret and the cookie key have done their work.
	s.transient.Secret.Wipe()
	s.transientDH.Wipe()
	if !ok {
		return nil, s.fail(protoErr(CodeCryptographic, ErrCrypto, "vouch does not open"))
	}
	if subtle.ConstantTimeCompare(vouch[:32], s.clientTransient[:])&
		subtle.ConstantTimeCompare(vouch[32:], s.cfg.KeyPair.Public[:]) != 1 {
		return nil, s.fail(protoErr(CodeKeyExchange, ErrCrypto, "vouch does not name this connection's keys"))
	}
	meta, err := ParseMetadata([]byte(r))
	if err != nil {
		return nil, s.fail(protoErr(CodeInvalidMetadata, ErrMalformed, "INITIATE metadata: %v", err))
	}
	if _, spoof := meta.Get(PropUserID); spoof {
		return nil, s.fail(protoErr(CodeInvalidMetadata, ErrMalformed, "client sent the reserved property %q", PropUserID))
	}
	s.clientKey = clientKey
	s.peerNonce = m.nonce
	s.peerMeta = meta
	s.state = stateDecision
	id, _ := meta.Get(PropIdentity)
	return &Request{Domain: s.cfg.Domain, Identity: id, Mechanism: "CURVE", ClientKey: clientKey}, nil
}

// Answer applies the authorizer's result (RFC 27) and appends the reply to dst: READY for
// status 200, with the Session; ERROR "400" or "500" for those statuses; nothing for 300,
// after which, as libzmq does, the caller closes without a word. Every status but 200
// returns an *AuthError. An unknown status counts as 500.
func (s *Server) Answer(dst []byte, res Result) ([]byte, *Session, error) {
	if err := s.expect(stateDecision); err != nil {
		return dst, nil, err
	}
	switch res.Status {
	case StatusOK:
	case StatusTemporary:
		return dst, nil, s.fail(&AuthError{Status: StatusTemporary, Reason: res.StatusText})
	case StatusDenied:
		e := errorCmd{reason: "400"}
		return e.marshal(dst), nil, s.fail(&AuthError{Status: StatusDenied, Reason: res.StatusText})
	default:
		e := errorCmd{reason: "500"}
		return e.marshal(dst), nil, s.fail(&AuthError{Status: StatusInternalError, Reason: res.StatusText})
	}
	plain, err := s.cfg.Metadata.Append(nil)
	if err != nil {
		return dst, nil, s.fail(err)
	}
	readyNonce := tamperNonce(s.cfg.Tamper, "ready-nonce", 1)
	r := readyCmd{nonce: readyNonce}
	n := shortNonce(&prefixReady, readyNonce)
	r.box = seal(nil, s.cfg.tamper("ready-plain", plain), &n, &s.sessionKey)
	peer := s.peerMeta
	if res.UserID != "" {
		peer = append(peer.Without(PropUserID), Property{Name: PropUserID, Value: []byte(res.UserID)})
	}
	for _, p := range res.Metadata {
		if _, dup := peer.Get(p.Name); !dup {
			peer = append(peer, p)
		}
	}
	sess := newSession(&s.sessionKey, false, readyNonce, s.peerNonce, s.clientKey, peer)
	sess.tamper = s.cfg.Tamper
	s.state = stateDone
	s.Clear()
	return r.marshal(dst), sess, nil
}

// ClientKey returns the client's long-term public key once INITIATE is verified.
func (s *Server) ClientKey() key.PublicKey { return s.clientKey }

// PeerMetadata returns the client's metadata from INITIATE.
func (s *Server) PeerMetadata() Metadata { return s.peerMeta }

// Err returns the error that ended the handshake, if any.
func (s *Server) Err() error { return s.err }

// Clear zeroes every secret the handshake holds; a handshake that was not done fails.
func (s *Server) Clear() {
	s.transient.Secret.Wipe()
	s.transientDH.Wipe()
	dropLongTerm(&s.longTermDH, s.ownLongTerm)
	clear(s.cookieKey[:])
	clear(s.sessionKey[:])
	if s.state != stateDone && s.state != stateFailed {
		s.state = stateFailed
		s.err = fmt.Errorf("%w: handshake cleared", ErrState)
	}
}

// Wiped reports whether every secret the handshake held is zero (the transient secret key,
// the cookie key and the session box key). The long-term keys belong to the Config.
func (s *Server) Wiped() bool {
	return s.transient.Secret.IsZero() && allZero(s.cookieKey[:]) && allZero(s.sessionKey[:]) &&
		wiped(s.transientDH) && wiped(s.longTermDH)
}

// String describes the handshake's state, never its secrets.
func (s *Server) String() string { return "handshake.Server(" + s.state.String() + ")" }

// Format prints String for every verb, so no fmt verb reaches the secret fields; its value
// receiver covers a Server printed by value too.
func (s Server) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

func (s *Server) expect(st state) error {
	if s.state == stateFailed {
		return s.err
	}
	if s.state != st {
		return s.fail(fmt.Errorf("%w: server is in state %s, not %s", ErrState, s.state, st))
	}
	return nil
}

func (s *Server) fail(err error) error {
	s.state = stateFailed
	s.err = err
	s.Clear()
	return err
}
