package handshake

import (
	"fmt"

	"github.com/curvezmq/curvezmq/curve/key"
)

// EventKind names what happened to a handshake, with libzmq's socket-monitor names.
type EventKind uint8

const (
	// EventHandshakeSucceeded is ZMQ_EVENT_HANDSHAKE_SUCCEEDED: READY sent or received.
	EventHandshakeSucceeded EventKind = iota + 1
	// EventHandshakeFailedNoDetail is ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: the connection
	// failed for a reason outside the protocol (I/O error, EOF, deadline), or the peer sent
	// an ERROR whose reason is not a ZAP status (libzmq reports no event for that).
	EventHandshakeFailedNoDetail
	// EventHandshakeFailedProtocol is ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: Code holds the
	// ZMQ_PROTOCOL_ERROR_* value (see [ProtocolError]).
	EventHandshakeFailedProtocol
	// EventHandshakeFailedAuth is ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: Code holds the ZAP
	// status, 300, 400 or 500.
	EventHandshakeFailedAuth
)

func (k EventKind) String() string {
	switch k {
	case EventHandshakeSucceeded:
		return "HANDSHAKE_SUCCEEDED"
	case EventHandshakeFailedNoDetail:
		return "HANDSHAKE_FAILED_NO_DETAIL"
	case EventHandshakeFailedProtocol:
		return "HANDSHAKE_FAILED_PROTOCOL"
	case EventHandshakeFailedAuth:
		return "HANDSHAKE_FAILED_AUTH"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event reports the outcome of one handshake.
type Event struct {
	Kind EventKind
	// Code is the ZMQ_PROTOCOL_ERROR_* value for EventHandshakeFailedProtocol and the ZAP
	// status for EventHandshakeFailedAuth; 0 otherwise.
	Code int
	// Server reports whether we were the CURVE server.
	Server bool
	// RemoteAddr is the peer's network address, host and port.
	RemoteAddr string
	// PeerKey is the peer's long-term public key once known (the server learns it from
	// INITIATE; the client knows it from its configuration); zero otherwise.
	PeerKey key.PublicKey
	// Err is the error that ended the handshake; nil on success. It never holds a secret.
	Err error
}

func (e Event) String() string {
	s := e.Kind.String()
	if e.Code != 0 {
		if e.Kind == EventHandshakeFailedProtocol {
			s += fmt.Sprintf(" 0x%08x", e.Code)
		} else {
			s += fmt.Sprintf(" %d", e.Code)
		}
	}
	if e.RemoteAddr != "" {
		s += " " + e.RemoteAddr
	}
	if !e.PeerKey.IsZero() {
		s += " key " + e.PeerKey.Short()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
