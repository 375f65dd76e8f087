package handshake

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"

	"github.com/curvezmq/curvezmq/curve/key"
)

// DefaultMaxMetadata is the default cap on the metadata a peer may send in INITIATE or
// READY. libzmq has no cap but ZMQ_MAXMSGSIZE; a libzmq peer sends a few hundred bytes
// (Socket-Type and an Identity of at most 255 bytes). The cap bounds what an
// unauthenticated client can make a server decrypt and hold (CVE-2019-13132's lesson).
const DefaultMaxMetadata = 16 << 10

// Config configures one side of a handshake. It may be shared by many handshakes and must
// not be modified once in use.
type Config struct {
	// KeyPair is our long-term key pair: the server's on a server, the client's on a
	// client. Required. It is used in place, never copied, so wiping it is the owner's job.
	// Its halves must match (key.KeyPair.Check): deriving the public key costs a scalar
	// multiplication, so it is the caller's job to check once, not every handshake's.
	KeyPair *key.KeyPair
	// ServerKey is the server's long-term public key. Required on a client.
	ServerKey key.PublicKey
	// Metadata holds our properties for INITIATE (client) or READY (server), such as
	// Socket-Type and Identity. User-Id is reserved for the server's authorizer.
	Metadata Metadata
	// Agreement, if set, is KeyPair's secret made ready once for many handshakes (see
	// key.NewAgreement); it saves each handshake a scalar multiplication. Handshakes never
	// wipe it: it belongs to whoever made it.
	Agreement *key.Agreement
	// Domain is the ZAP domain the server reports in each Request.
	Domain string
	// MaxMetadata caps the peer's metadata in bytes; 0 means DefaultMaxMetadata.
	MaxMetadata int
	// Rand is the source of transient keys, nonces and cookie keys; nil means crypto/rand.
	Rand io.Reader

	// Tamper, when set, sees each plaintext this side is about to seal and each short nonce
	// it is about to use, named by stage ("hello-plain", "cookie-plain", "welcome-plain",
	// "vouch-plain", "initiate-plain", "ready-plain", "hello-nonce", "initiate-nonce",
	// "ready-nonce", "message-nonce"), and returns what to use instead. It exists so that
	// tests and fuzzers can send malformed fields behind valid cryptography; it defeats the
	// protocol and must be nil in production.
	Tamper func(stage string, b []byte) []byte
}

func (c *Config) tamper(stage string, b []byte) []byte {
	if c.Tamper == nil {
		return b
	}
	return c.Tamper(stage, b)
}

// tamperNonce passes a short nonce through Tamper.
func tamperNonce(t func(string, []byte) []byte, stage string, n uint64) uint64 {
	if t == nil {
		return n
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	out := t(stage, b[:])
	if len(out) != 8 {
		return n
	}
	return binary.BigEndian.Uint64(out)
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) maxMetadata() int {
	if c.MaxMetadata > 0 {
		// Room for the largest command's fixed part: a cap near MaxInt means none, and
		// must not overflow when added to it.
		return min(c.MaxMetadata, math.MaxInt-initiateMinSize)
	}
	return DefaultMaxMetadata
}

// prepare makes a transient key pair with its agreement, and the agreement of the
// long-term secret key unless the Config holds one (owned reports which): the scalar
// multiplications a side can do before it needs anything from the peer, on two cores.
func (c *Config) prepare() (t key.KeyPair, ta, la *key.Agreement, owned bool, err error) {
	la, owned = c.Agreement, c.Agreement == nil
	parallel(
		func() { t, ta, err = key.GenerateAgreement(c.rand()) },
		func() {
			if owned {
				la = key.NewAgreement(&c.KeyPair.Secret)
			}
		},
	)
	if err != nil {
		return key.KeyPair{}, nil, nil, false, fmt.Errorf("handshake: transient key: %w", err)
	}
	return t, ta, la, owned, nil
}

// dropLongTerm forgets a long-term agreement, wiping it only if the handshake made it.
func dropLongTerm(a **key.Agreement, owned bool) {
	if owned {
		(*a).Wipe()
	}
	*a = nil
}

// check validates what both roles need.
func (c *Config) check(client bool) error {
	if c == nil || c.KeyPair == nil {
		return fmt.Errorf("%w: no long-term key pair", ErrBadKey)
	}
	if c.KeyPair.Secret.IsZero() {
		return fmt.Errorf("%w: long-term secret key is all zeros", ErrBadKey)
	}
	if client {
		if err := c.ServerKey.Check(); err != nil {
			return fmt.Errorf("%w: server key is all zeros or of small order", ErrBadKey)
		}
	}
	if _, reserved := c.Metadata.Get(PropUserID); reserved {
		return fmt.Errorf("handshake: metadata property %q is reserved for the authorizer", PropUserID)
	}
	if _, err := c.Metadata.Append(nil); err != nil {
		return err
	}
	return nil
}

// state is the position of a handshake in its state machine (RFC 26, "Protocol Flow").
type state uint8

const (
	stateStart    state = iota // client: HELLO not sent yet; server: waiting for HELLO
	stateWelcome               // client: HELLO sent, waiting for WELCOME (or ERROR)
	stateReady                 // client: INITIATE sent, waiting for READY (or ERROR)
	stateInitiate              // server: WELCOME sent, waiting for INITIATE
	stateDecision              // server: INITIATE verified, waiting for the authorizer's answer
	stateDone                  // READY sent or received: the Session owns the keys now
	stateFailed                // any failure; terminal
)

func (s state) String() string {
	switch s {
	case stateStart:
		return "start"
	case stateWelcome:
		return "expect WELCOME"
	case stateReady:
		return "expect READY"
	case stateInitiate:
		return "expect INITIATE"
	case stateDecision:
		return "expect decision"
	case stateDone:
		return "done"
	case stateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// parallel runs a and b, on two goroutines when more than one CPU may run Go code.
func parallel(a, b func()) {
	if runtime.GOMAXPROCS(0) < 2 {
		a()
		b()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b()
	}()
	a()
	<-done
}

// wiped reports whether an agreement is absent or wiped.
func wiped(a *key.Agreement) bool { return a == nil || a.Wiped() }
