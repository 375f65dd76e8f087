package handshake

import (
	"context"
	"io"

	"github.com/curvezmq/curvezmq/curve/key"
)

// ZAP status codes (RFC 27, "Status code"), as a server's [Authorizer] returns them.
const (
	StatusOK            = 200 // the client is allowed: the server sends READY
	StatusTemporary     = 300 // temporary failure: the server closes without ERROR (as libzmq)
	StatusDenied        = 400 // authentication failure: the server sends ERROR "400"
	StatusInternalError = 500 // internal error: the server sends ERROR "500"
)

// Request is what a CURVE server asks its [Authorizer] once INITIATE has been verified and
// before it answers with READY or ERROR: the fields of an RFC 27 ZAP request.
type Request struct {
	// Domain is the server's ZAP domain; empty when none was set.
	Domain string
	// Address is the peer's address without the port ("127.0.0.1", "::1"), as libzmq
	// puts it in a ZAP request; for a Unix socket, the socket path or "".
	Address string
	// Identity is the client's Identity metadata, if any. libzmq sends the server
	// socket's own routing id here (libzmq#4161); we send the connecting peer's.
	Identity []byte
	// Mechanism is always "CURVE".
	Mechanism string
	// ClientKey is the client's long-term public key, proven by the vouch.
	ClientKey key.PublicKey
}

// Result is an [Authorizer]'s answer: the fields of an RFC 27 ZAP reply.
type Result struct {
	// Status is StatusOK, StatusTemporary, StatusDenied or StatusInternalError. Any other
	// value is treated as StatusInternalError.
	Status int
	// StatusText is a reason for logs; it is never sent to the peer.
	StatusText string
	// UserID becomes the connection's User-Id property when Status is StatusOK.
	UserID string
	// Metadata becomes part of the connection's peer properties when Status is StatusOK.
	Metadata Metadata
}

// Authorizer decides whether a client that completed INITIATE may proceed (RFC 27). It is
// called once per handshake, from the goroutine running that handshake; ctx carries the
// handshake deadline. Implementations must be safe for concurrent use.
type Authorizer interface {
	Authorize(ctx context.Context, req *Request) Result
}

// AuthorizerFunc adapts a function to the [Authorizer] interface.
type AuthorizerFunc func(ctx context.Context, req *Request) Result

// Authorize calls f(ctx, req).
func (f AuthorizerFunc) Authorize(ctx context.Context, req *Request) Result { return f(ctx, req) }

// Tracker is implemented by authorizers that revoke: once a connection has completed its
// handshake with an allowed key, the server calls Track with that key and a way to close
// the connection, and calls untrack when the connection ends. The tracker may close the
// connection at any time in between, e.g. when the key leaves its allow-list.
type Tracker interface {
	Track(clientKey key.PublicKey, conn io.Closer) (untrack func())
}
