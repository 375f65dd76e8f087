package zmtp

import (
	"encoding/binary"
	"fmt"
)

// Commands carried inside an encrypted session (RFC 37 "Connection heartbeating" and
// ZMTP 3.1 subscriptions). In CURVE they are MESSAGEs whose inner flags have the COMMAND
// bit set; the payload is the command body.

// MaxPingContext is the most context a PING may carry (RFC 37).
const MaxPingContext = 16

// AppendPing appends a PING command body: name, TTL in tenths of a second, context.
func AppendPing(dst []byte, ttl uint16, context []byte) []byte {
	if len(context) > MaxPingContext {
		context = context[:MaxPingContext]
	}
	dst = append(dst, 4, 'P', 'I', 'N', 'G')
	dst = binary.BigEndian.AppendUint16(dst, ttl)
	return append(dst, context...)
}

// ParsePing parses a PING command body. Unlike libzmq 4.3 (which reads a TTL and 16 bytes
// of context from a PING of any length and echoes bytes the peer never sent), it requires
// the 2-byte TTL, and returns at most 16 bytes of context: exactly what a PONG may echo.
// The context aliases body.
func ParsePing(body []byte) (ttl uint16, context []byte, err error) {
	if !IsCommand(body, "PING") || len(body) < 7 {
		return 0, nil, fmt.Errorf("%w: PING of %d bytes", ErrMalformed, len(body))
	}
	ttl = binary.BigEndian.Uint16(body[5:7])
	context = body[7:]
	if len(context) > MaxPingContext {
		context = context[:MaxPingContext]
	}
	return ttl, context, nil
}

// AppendPong appends a PONG command body echoing context (at most 16 bytes).
func AppendPong(dst []byte, context []byte) []byte {
	if len(context) > MaxPingContext {
		context = context[:MaxPingContext]
	}
	dst = append(dst, 4, 'P', 'O', 'N', 'G')
	return append(dst, context...)
}

// Subscription commands of ZMTP 3.1 and the data-message form of ZMTP 3.0.
const (
	subscribeName = "SUBSCRIBE"
	cancelName    = "CANCEL"
)

// ParseSubscription recognises a ZMTP 3.1 SUBSCRIBE or CANCEL command body and returns
// whether it subscribes (true) or cancels (false), and the topic (aliasing body).
func ParseSubscription(body []byte) (subscribe bool, topic []byte, ok bool) {
	switch {
	case IsCommand(body, subscribeName):
		return true, body[1+len(subscribeName):], true
	case IsCommand(body, cancelName):
		return false, body[1+len(cancelName):], true
	}
	return false, nil, false
}

// AppendSubscription appends a subscription in ZMTP 3.1 command form (for a 3.1 peer, with
// the COMMAND flag) or in the ZMTP 3.0 data form (0x01 or 0x00, then the topic).
func AppendSubscription(dst []byte, subscribe bool, topic []byte, v31 bool) []byte {
	if v31 {
		name := cancelName
		if subscribe {
			name = subscribeName
		}
		dst = append(dst, byte(len(name)))
		dst = append(dst, name...)
		return append(dst, topic...)
	}
	if subscribe {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	return append(dst, topic...)
}
