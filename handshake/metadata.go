package handshake

import (
	"bytes"
	"fmt"
	"strings"
)

// Property is one metadata property (ZMTP 3.0, RFC 23 "metadata"): a name of 1 to 255
// bytes and a value of up to 2^31-1 bytes.
type Property struct {
	Name  string
	Value []byte
}

// Metadata is an ordered list of properties, as carried by INITIATE and READY (RFC 26) and
// by the ZMTP NULL READY command. Standard names are "Socket-Type", "Identity" and, for
// properties set by the server's authorizer, "User-Id".
type Metadata []Property

// Well-known property names.
const (
	PropSocketType = "Socket-Type"
	PropIdentity   = "Identity"
	PropUserID     = "User-Id"
)

// Get returns the value of the first property called name. Names compare without regard to
// case (RFC 23); libzmq compares them exactly, which is stricter only for odd peers.
func (m Metadata) Get(name string) ([]byte, bool) {
	for _, p := range m {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of the property called name, or appends it.
func (m Metadata) Set(name string, value []byte) Metadata {
	for i, p := range m {
		if strings.EqualFold(p.Name, name) {
			m[i].Value = value
			return m
		}
	}
	return append(m, Property{Name: name, Value: value})
}

// Without returns m without the properties called name (in a new slice).
func (m Metadata) Without(name string) Metadata {
	var out Metadata
	for _, p := range m {
		if !strings.EqualFold(p.Name, name) {
			out = append(out, p)
		}
	}
	return out
}

// Size returns the length of m's wire encoding.
func (m Metadata) Size() int {
	n := 0
	for _, p := range m {
		n += 1 + len(p.Name) + 4 + len(p.Value)
	}
	return n
}

// Append appends the wire encoding of m to dst. It fails on a name that is empty or longer
// than 255 bytes, or a value longer than 2^31-1 bytes (libzmq asserts on both).
func (m Metadata) Append(dst []byte) ([]byte, error) {
	for _, p := range m {
		if len(p.Name) == 0 || len(p.Name) > 255 {
			return dst, fmt.Errorf("handshake: metadata name of %d bytes", len(p.Name))
		}
		if len(p.Value) > 0x7FFFFFFF {
			return dst, fmt.Errorf("handshake: metadata value of %d bytes", len(p.Value))
		}
		dst = append(dst, byte(len(p.Name)))
		dst = append(dst, p.Name...)
		n := len(p.Value)
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, p.Value...)
	}
	return dst, nil
}

// ParseMetadata parses the wire encoding of a property list. Like libzmq it accepts a
// zero-length name and an empty list; it rejects a name or value that overruns the input
// and any stray bytes at the end. The result does not alias b.
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	r := reader(b)
	for !r.empty() {
		var nameLen uint8
		var name, value []byte
		var valueLen uint32
		if !r.u8(&nameLen) || !r.bytes(&name, int(nameLen)) {
			return nil, fmt.Errorf("%w: metadata name overruns the command", ErrMalformed)
		}
		if !r.u32(&valueLen) || valueLen > 0x7FFFFFFF || !r.bytes(&value, int(valueLen)) {
			return nil, fmt.Errorf("%w: metadata value overruns the command", ErrMalformed)
		}
		m = append(m, Property{Name: string(name), Value: bytes.Clone(value)})
	}
	return m, nil
}
