package zmtp

import (
	"encoding/binary"
	"fmt"
)

// Frame flags (RFC 23, "Framing").
const (
	FlagMore    = 0x01
	FlagLong    = 0x02
	FlagCommand = 0x04
)

// MaxShortSize is the largest body a short (1-byte size) frame carries.
const MaxShortSize = 255

// HeaderSize returns the size of the header of a frame with a body of n bytes.
func HeaderSize(n int) int {
	if n > MaxShortSize {
		return 9
	}
	return 2
}

// AppendHeader appends a frame header for a body of n bytes: flags (with FlagLong set when
// n > 255) and the size in 1 or 8 big-endian bytes.
func AppendHeader(dst []byte, flags byte, n int) []byte {
	if n > MaxShortSize {
		dst = append(dst, flags|FlagLong)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, flags&^FlagLong, byte(n))
}

// PutHeader writes the header for a body of n bytes into dst, which must hold
// HeaderSize(n) bytes, and returns the number of bytes written.
func PutHeader(dst []byte, flags byte, n int) int {
	if n > MaxShortSize {
		dst[0] = flags | FlagLong
		binary.BigEndian.PutUint64(dst[1:9], uint64(n))
		return 9
	}
	dst[0] = flags &^ FlagLong
	dst[1] = byte(n)
	return 2
}

// ParseHeader parses a frame header at the start of b. It returns the flags, the body size
// and the header length; n is 0 when b does not yet hold a whole header. A size above max
// is an error wrapping ErrTooLarge, so no caller sizes a buffer from an unchecked length;
// sizes near 2^63 and 2^64 are compared as unsigned numbers and never converted first.
// Reserved flag bits are ignored, as libzmq does.
func ParseHeader(b []byte, max uint64) (flags byte, size uint64, n int, err error) {
	if len(b) < 2 {
		return 0, 0, 0, nil
	}
	flags = b[0]
	if flags&FlagLong == 0 {
		size, n = uint64(b[1]), 2
	} else {
		if len(b) < 9 {
			return 0, 0, 0, nil
		}
		size, n = binary.BigEndian.Uint64(b[1:9]), 9
	}
	if size > max {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, max)
	}
	return flags, size, n, nil
}

// AppendCommand appends a command frame (flags COMMAND, and LONG when needed) whose body is
// the length-prefixed name followed by data (RFC 23, "Commands").
func AppendCommand(dst []byte, name string, data ...[]byte) []byte {
	n := 1 + len(name)
	for _, d := range data {
		n += len(d)
	}
	dst = AppendHeader(dst, FlagCommand, n)
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	for _, d := range data {
		dst = append(dst, d...)
	}
	return dst
}

// ParseCommand splits a command body into its name and data. Like libzmq's
// check_basic_command_structure it requires at least the length byte and the whole name.
// The name of an empty-named or truncated command is an error.
func ParseCommand(body []byte) (name string, data []byte, err error) {
	if len(body) < 2 || int(body[0]) == 0 || len(body) < 1+int(body[0]) {
		return "", nil, fmt.Errorf("%w: command of %d bytes", ErrMalformed, len(body))
	}
	n := int(body[0])
	return string(body[1 : 1+n]), body[1+n:], nil
}

// IsCommand reports whether body is a command called name: it starts with the
// length-prefixed name (and may hold nothing more).
func IsCommand(body []byte, name string) bool {
	return len(body) >= 1+len(name) && int(body[0]) == len(name) && string(body[1:1+len(name)]) == name
}
