// Package curve is a pure-Go CurveZMQ (ZMTP 3 with the CURVE mechanism, ZMQ RFC 25, 26 and
// 37) that talks to libzmq 4.3 byte for byte.
//
// A [Conn] is one secured ZMTP connection, in the manner of crypto/tls: [Client] and
// [Server] wrap a net.Conn, [Dial] and [Listen] make them, and the handshake runs on first
// use or through [Conn.Handshake]. Messages are multipart; each frame travels as one
// encrypted MESSAGE.
//
// The package also registers a go-zeromq/zmq4 transport, so that zmq4 sockets speak CURVE
// through "curve://host:port" and "curve+ipc://path" endpoints; see [WithConfig].
//
// # Keys and authentication
//
// Both sides have a long-term key pair ([KeyPair]); a client also needs the server's public
// key. A server decides who may connect with an [Authorizer] (RFC 27 semantics: status 200
// lets the client in, 400 and 500 send ERROR with that code, 300 closes without a word). A
// server with no Authorizer admits any client that knows its public key, as libzmq does
// without a ZAP handler. [Conn.PeerPublicKey] gives the authenticated client key.
//
// # The zmq4 transport
//
// go-zeromq/zmq4's Security interface cannot carry CURVE: zmq4 writes each frame's header,
// with the plaintext length, before Encrypt sees the frame, takes MORE and COMMAND from
// the outer frame that CURVE encrypts, and shares one Security value among all the
// connections of a socket with no connection identity. So this package registers the
// transports "curve" and "curve+ipc" instead (zmq4.RegisterTransport, in init): their
// connections run the real CURVE greeting and handshake on the wire and show zmq4 a
// NULL-security stream, each zmq4 frame travelling as one MESSAGE. Keys and policy reach
// the transport through the context a socket is built with:
//
//	sock := zmq4.NewRep(curve.WithConfig(ctx, cfg))
//	err := sock.Listen("curve://127.0.0.1:5555")
//
// The CURVE role comes from [Config.Server], whatever the socket binds or connects, as in
// libzmq; a socket built without a Config fails at Dial or Listen with [ErrNoConfig].
// A connection reaches zmq4 only once its client is authorized, and zmq4's NULL handshake
// is answered only after READY, so zmq4 never routes a message to a connection whose
// handshake did not complete (the lesson of CVE-2020-15166). Each server-side handshake
// runs in its own goroutine under the handshake deadline, so a slow or hostile peer never
// stalls zmq4's accept loop; a refused client gets ERROR and never reaches zmq4. A
// connection made by Dial reconnects by itself when lost, as libzmq's sessions do,
// replaying the handshake with zmq4's metadata. zmq4 does not expose which connection a
// message came from, so [Config.OnAuthenticated] and [Config.Events] report each
// authenticated peer and each handshake. docs/zmq4-session-api.md proposes the zmq4 API
// that would make the transport unnecessary.
//
// What the transport works around in zmq4 v0.17.0:
//   - PING is never answered (only the unused Conn.RecvMsg does it): the transport answers
//     PINGs itself and never hands PING or PONG to zmq4;
//   - Recv has no deadline: set HeartbeatInterval and HeartbeatTimeout so that a dead peer
//     ends the connection, and bound Recv in the caller;
//   - the accept loop spins on Accept errors: the transport's Accept fails only once
//     closed;
//   - a connection whose Open failed is never closed: the transport closes, and wipes, any
//     connection whose zmq4 handshake fails or has not completed by the deadline;
//   - WithAutomaticReconnect can deadlock a REQ socket (a failed write re-dials while the
//     writer holds a lock the connection reaper needs): do not use it; the transport
//     reconnects beneath zmq4;
//   - each message is sent from a new goroutine per connection: the transport's writer
//     goroutine seals frames, so those goroutines' stacks stay small;
//   - one goroutine writes to all of a socket's peers, so a peer that stops reading stalls
//     the rest: set [Config.SendTimeout] on a server to drop such a peer;
//   - a message is held whole before the application sees it: [Config.MaxMessageSize]
//     bounds the whole message on the transport, and a message reaches zmq4 only once its
//     last frame is in, so a lost connection never leaves zmq4 half a message.
//
// zmq4 bugs it cannot work around: a closed PUB socket leaks its writer goroutine, and a
// REP socket ends a request's envelope at its last empty frame instead of the first.
//
// # What is stricter than libzmq
//
// Refused, where libzmq accepts: non-canonical key encodings (bit 255 set, or at least
// 2^255-19), which X25519 reduces to another key's; all-zero and small-order keys (libzmq
// relies on libsodium failing later); a HELLO whose padding or signature box is not zero;
// a vouch whose server
// half is not this server's key (libzmq compares only the client half); a client that sends
// the reserved User-Id property; ZMTP 1.0 and 2.0 peers at any point; handshake commands
// larger than the largest legal command plus a metadata cap; a short PING. A connection
// gets a handshake deadline ([DefaultHandshakeTimeout]), and reaches the application only
// after READY.
//
// # Secrets
//
// Transient secret keys, the cookie key and the handshake's box keys are zeroed as soon as
// READY is sent or received, and on ERROR, refusal, deadline, EOF and Close; the session key
// on Close. Secret keys print as REDACTED with every fmt verb, and no error or event carries
// one. Go's garbage collector may have copied a value before it was zeroed: wiping narrows
// the window in which a memory dump reveals a key, it cannot close it.
package curve

import (
	"context"
	"io"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// Key types, from package key.
type (
	// PublicKey is a Curve25519 public key; String gives its Z85 text.
	PublicKey = key.PublicKey
	// SecretKey is a Curve25519 secret key; it formats as REDACTED.
	SecretKey = key.SecretKey
	// KeyPair is a public key with its secret key.
	KeyPair = key.KeyPair
)

// GenerateKeyPair returns a new key pair from rand, or from crypto/rand when rand is nil.
func GenerateKeyPair(rand io.Reader) (KeyPair, error) { return key.GenerateKeyPair(rand) }

// ParsePublicKey decodes a public key from 40 Z85 characters, 41 bytes ending in NUL, or
// 32 raw bytes.
func ParsePublicKey(b []byte) (PublicKey, error) { return key.ParsePublicKey(b) }

// ParseSecretKey decodes a secret key from 40 Z85 characters, 41 bytes ending in NUL, or
// 32 raw bytes.
func ParseSecretKey(b []byte) (SecretKey, error) { return key.ParseSecretKey(b) }

// Authentication and metadata types, from package handshake.
type (
	// Authorizer decides, per handshake, whether a client may connect (RFC 27).
	Authorizer = handshake.Authorizer
	// AuthorizerFunc adapts a function to Authorizer.
	AuthorizerFunc = handshake.AuthorizerFunc
	// Request is what the server asks its Authorizer.
	Request = handshake.Request
	// Result is the Authorizer's answer.
	Result = handshake.Result
	// Metadata is a list of ZMTP properties.
	Metadata = handshake.Metadata
	// Property is one ZMTP property.
	Property = handshake.Property
	// Event reports the outcome of a handshake, with libzmq's monitor event names.
	Event = handshake.Event
	// EventKind is the kind of an Event.
	EventKind = handshake.EventKind
)

// ZAP status codes.
const (
	StatusOK            = handshake.StatusOK
	StatusTemporary     = handshake.StatusTemporary
	StatusDenied        = handshake.StatusDenied
	StatusInternalError = handshake.StatusInternalError
)

// Event kinds.
const (
	EventHandshakeSucceeded      = handshake.EventHandshakeSucceeded
	EventHandshakeFailedNoDetail = handshake.EventHandshakeFailedNoDetail
	EventHandshakeFailedProtocol = handshake.EventHandshakeFailedProtocol
	EventHandshakeFailedAuth     = handshake.EventHandshakeFailedAuth
)

// AllowKeys returns an Authorizer that admits exactly the given client keys, with the Z85
// key as User-Id.
func AllowKeys(keys ...PublicKey) Authorizer {
	set := make(map[PublicKey]struct{}, len(keys))
	for _, k := range keys {
		set[k] = struct{}{}
	}
	return AuthorizerFunc(func(_ context.Context, r *Request) Result {
		if _, ok := set[r.ClientKey]; ok {
			return Result{Status: StatusOK, StatusText: "OK", UserID: r.ClientKey.String()}
		}
		return Result{Status: StatusDenied, StatusText: "unknown key"}
	})
}
