package handshake

import (
	"errors"
	"fmt"
)

// Sentinels. Errors returned by this package wrap one of them (match with errors.Is); those
// that libzmq reports as a protocol error are also a [*ProtocolError] carrying its code.
var (
	// ErrMalformed: a command or message of the wrong size or shape.
	ErrMalformed = errors.New("handshake: malformed command")
	// ErrUnexpectedCommand: a command that is not the one the state machine expects.
	ErrUnexpectedCommand = errors.New("handshake: unexpected command")
	// ErrCrypto: a box, cookie or vouch that does not open or does not match.
	ErrCrypto = errors.New("handshake: cryptographic check failed")
	// ErrNonce: a MESSAGE nonce not greater than the last one (a replay), or a send
	// counter at its limit.
	ErrNonce = errors.New("handshake: invalid nonce sequence")
	// ErrAuth: the server's authorizer refused the client (an ERROR command, or a 300).
	ErrAuth = errors.New("handshake: authentication failed")
	// ErrState: a method called in the wrong state, or on a session that already failed.
	ErrState = errors.New("handshake: wrong state")
	// ErrBadKey: a configured or received key that is all zeros or of small order.
	ErrBadKey = errors.New("handshake: unusable key")
)

// libzmq's ZMQ_PROTOCOL_ERROR_* values (zmq.h), reported in [ProtocolError.Code] and in
// EventHandshakeFailedProtocol events.
const (
	CodeZMTPUnspecified      = 0x10000000
	CodeUnexpectedCommand    = 0x10000001
	CodeInvalidSequence      = 0x10000002
	CodeKeyExchange          = 0x10000003
	CodeMalformedUnspecified = 0x10000011
	CodeMalformedMessage     = 0x10000012
	CodeMalformedHello       = 0x10000013
	CodeMalformedInitiate    = 0x10000014
	CodeMalformedError       = 0x10000015
	CodeMalformedReady       = 0x10000016
	CodeMalformedWelcome     = 0x10000017
	CodeInvalidMetadata      = 0x10000018
	CodeCryptographic        = 0x11000001
	CodeMechanismMismatch    = 0x11000002
	CodeZAPUnspecified       = 0x20000000
	CodeZAPMalformedReply    = 0x20000001
	CodeZAPBadRequestID      = 0x20000002
	CodeZAPBadVersion        = 0x20000003
	CodeZAPInvalidStatusCode = 0x20000004
	CodeZAPInvalidMetadata   = 0x20000005
)

// ProtocolError is a handshake or session failure that libzmq would report as
// HANDSHAKE_FAILED_PROTOCOL with Code. It wraps one of the sentinels.
type ProtocolError struct {
	Code int
	Err  error
}

func (e *ProtocolError) Error() string { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

// protoErr returns a *ProtocolError with code wrapping sentinel, with detail appended.
func protoErr(code int, sentinel error, format string, args ...any) error {
	if format == "" {
		return &ProtocolError{Code: code, Err: sentinel}
	}
	return &ProtocolError{Code: code, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// AuthError reports a refused handshake: on the client, an ERROR command from the server
// (Status 300, 400 or 500 when the reason is one of those, else 0 and the reason in Reason);
// on the server, the authorizer's non-200 result. It wraps ErrAuth.
type AuthError struct {
	Status int
	Reason string
}

func (e *AuthError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("handshake: authentication failed: status %d", e.Status)
	}
	return fmt.Sprintf("handshake: authentication failed: ERROR %q", e.Reason)
}

func (e *AuthError) Unwrap() error { return ErrAuth }
