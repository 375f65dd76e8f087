package zap

import "errors"

// Sentinels. Errors returned by this package wrap one of them or an error from the
// filesystem (match with errors.Is).
var (
	// ErrClosed is returned by methods called after [Authenticator.Close].
	ErrClosed = errors.New("zap: authenticator closed")
	// ErrAllowDeny is returned when both an address allow list and a deny list would be
	// configured; as in pyzmq and czmq's zauth, they are mutually exclusive.
	ErrAllowDeny = errors.New("zap: address allow and deny lists are mutually exclusive")
	// ErrNotDirectory is returned when a key location exists but is not a directory.
	ErrNotDirectory = errors.New("zap: not a directory")
	// ErrTemporary, wrapped by the error of a [CurveCallback], makes the handshake fail
	// with status 300, a temporary failure: the server closes the connection without an
	// ERROR command, as libzmq does, and a libzmq client tries again later. Any other
	// callback error gives 500, which a libzmq client takes as final.
	ErrTemporary = errors.New("zap: temporary failure")
)
