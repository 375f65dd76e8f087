package curve

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// Defaults for a Config's zero values.
const (
	// DefaultHandshakeTimeout bounds a whole handshake, greeting to READY, authorizer
	// included. libzmq's ZMQ_HANDSHAKE_IVL is 30 s; a handshake takes milliseconds, and a
	// shorter deadline frees what a silent or hostile peer holds sooner.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxMessageSize caps one received frame's payload once authenticated (libzmq's
	// ZMQ_MAXMSGSIZE, which defaults to unlimited). Buffers grow only as bytes arrive, so a
	// peer must send what it announces.
	DefaultMaxMessageSize = 64 << 20
	// DefaultMaxMetadata caps the metadata a peer may send in INITIATE or READY, and so the
	// size of anything read before authentication.
	DefaultMaxMetadata = handshake.DefaultMaxMetadata
)

// Sentinel errors.
var (
	// ErrClosed is returned by operations on a closed Conn or Listener.
	ErrClosed = errors.New("curve: use of closed connection")
	// ErrHeartbeat is returned when no traffic arrived within the heartbeat timeout.
	ErrHeartbeat = errors.New("curve: heartbeat timeout")
	// ErrTooLarge is returned when a peer sends a frame above the configured maximum.
	ErrTooLarge = errors.New("curve: frame too large")
)

// Config configures a Conn. A Config may be shared by many connections and must not be
// modified once in use.
type Config struct {
	// KeyPair is our long-term key pair: the server's on a server. Required.
	KeyPair KeyPair
	// ServerKey is the server's long-term public key. Required on a client.
	ServerKey PublicKey
	// Server selects the CURVE server role for zmq4 sockets, whatever they bind or
	// connect, as libzmq's ZMQ_CURVE_SERVER does. Client, Server, Dial and Listen ignore
	// it: their names choose the role.
	Server bool

	// Authorizer decides, on a server, which clients may connect. Nil admits every client
	// that knows the server's public key, as libzmq without a ZAP handler. If it also
	// implements handshake.Tracker, it may close connections later (revocation).
	Authorizer Authorizer
	// Domain is the ZAP domain reported to the Authorizer.
	Domain string

	// SocketType is our ZMTP socket type ("REQ", "REP", "DEALER", ...), sent as
	// Socket-Type. When set and the peer sends one, the pair must be valid (RFC 28, as
	// libzmq checks it).
	SocketType string
	// Identity is sent as the Identity property when non-empty.
	Identity []byte
	// Metadata holds further properties to send (User-Id is reserved).
	Metadata Metadata

	// HandshakeTimeout bounds the handshake; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxMetadata caps the peer's handshake metadata in bytes; 0 means DefaultMaxMetadata.
	MaxMetadata int
	// MaxMessageSize caps one received frame's payload in bytes and, on a zmq4 socket, a
	// whole received message (zmq4 holds a message whole before handing it over); 0 means
	// DefaultMaxMessageSize, a negative value means 2^62. A peer that sends more loses the
	// connection, as in libzmq.
	MaxMessageSize int64
	// SendTimeout, when positive, fails the connection when the peer takes none of our
	// data for that long while we have some to send (its TCP window shut): sends then
	// return an error wrapping os.ErrDeadlineExceeded. A slow peer that keeps reading is
	// not affected. A zmq4 socket writes to all its peers from one goroutine, so on a zmq4
	// server one peer that stops reading stalls the others unless this is set: the stalled
	// connection is then dropped (libzmq drops that peer's messages instead). 0 means no
	// limit.
	SendTimeout time.Duration

	// HeartbeatInterval, when positive, makes the connection send a PING at that interval
	// (ZMQ_HEARTBEAT_IVL), carrying HeartbeatTTL (ZMQ_HEARTBEAT_TTL, rounded down to tenths
	// of a second). A Conn always answers a peer's PING.
	HeartbeatInterval time.Duration
	HeartbeatTTL      time.Duration
	// HeartbeatTimeout, when positive, ends the connection with ErrHeartbeat if nothing
	// arrives for that long while it is being read (ZMQ_HEARTBEAT_TIMEOUT; libzmq defaults
	// it to the interval). A PING's TTL from the peer sets the same limit.
	HeartbeatTimeout time.Duration

	// Events, if set, is called once per handshake with its outcome, from the goroutine
	// that ran it. It must not block for long.
	Events func(Event)
	// OnAuthenticated, if set, is called on a server when a client has completed the
	// handshake, before its first message is read.
	OnAuthenticated func(Peer)

	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader

	// tamper is handshake.Config.Tamper, for this package's tests only.
	tamper func(string, []byte) []byte
}

// Peer describes an authenticated peer.
type Peer struct {
	// Key is the peer's long-term public key.
	Key PublicKey
	// UserID is the User-Id the server's authorizer gave the client, if any.
	UserID string
	// RemoteAddr is the peer's network address.
	RemoteAddr net.Addr
	// Metadata holds the peer's properties.
	Metadata Metadata
}

func (c *Config) handshakeTimeout() time.Duration {
	if c.HandshakeTimeout > 0 {
		return c.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (c *Config) maxMessage() uint64 {
	switch {
	case c.MaxMessageSize > 0:
		return uint64(c.MaxMessageSize)
	case c.MaxMessageSize < 0:
		return 1 << 62
	}
	return DefaultMaxMessageSize
}

// metadata returns the properties we send.
func (c *Config) metadata() Metadata {
	var m Metadata
	if c.SocketType != "" {
		m = append(m, Property{Name: handshake.PropSocketType, Value: []byte(c.SocketType)})
	}
	if len(c.Identity) > 0 {
		m = append(m, Property{Name: handshake.PropIdentity, Value: c.Identity})
	}
	return append(m, c.Metadata...)
}

// handshakeConfig returns the per-connection handshake configuration; agreement, if not
// nil, is the long-term secret made ready once by a listener.
func (c *Config) handshakeConfig(meta Metadata, agreement *key.Agreement) *handshake.Config {
	return &handshake.Config{
		KeyPair:     &c.KeyPair,
		Agreement:   agreement,
		ServerKey:   c.ServerKey,
		Metadata:    meta,
		Domain:      c.Domain,
		MaxMetadata: c.MaxMetadata,
		Rand:        c.Rand,
		Tamper:      c.tamper,
	}
}

// check reports a configuration that can never complete a handshake. It is cheap, for
// every handshake; checkPair, which derives the public key, runs once per Listen.
func (c *Config) check(client bool) error {
	if c == nil {
		return errors.New("curve: nil Config")
	}
	if c.KeyPair.Secret.IsZero() {
		return errors.New("curve: Config has no key pair")
	}
	if client && c.ServerKey.IsZero() {
		return errors.New("curve: client Config has no server key")
	}
	return nil
}

// checkPair is check plus the check that the key pair's halves match.
func (c *Config) checkPair(client bool) error {
	if err := c.check(client); err != nil {
		return err
	}
	if err := c.KeyPair.Check(); err != nil {
		return fmt.Errorf("curve: Config key pair: %w", err)
	}
	return nil
}

// validPeers lists the socket types each type may talk to (RFC 28 and libzmq's
// mechanism_t::check_socket_type).
var validPeers = map[string][]string{
	"PAIR":   {"PAIR"},
	"PUB":    {"SUB", "XSUB"},
	"XPUB":   {"SUB", "XSUB"},
	"SUB":    {"PUB", "XPUB"},
	"XSUB":   {"PUB", "XPUB"},
	"REQ":    {"REP", "ROUTER"},
	"REP":    {"REQ", "DEALER"},
	"DEALER": {"REP", "DEALER", "ROUTER"},
	"ROUTER": {"REQ", "DEALER", "ROUTER"},
	"PUSH":   {"PULL"},
	"PULL":   {"PUSH"},
}

func compatible(ours, theirs string) bool {
	peers, known := validPeers[ours]
	if !known {
		return true
	}
	for _, p := range peers {
		if p == theirs {
			return true
		}
	}
	return false
}
