package handshake

import "encoding/binary"

// reader is a bounded reader over untrusted bytes, in the manner of cryptobyte.String: each
// method consumes input and reports whether there was enough; nothing indexes past the end.
type reader []byte

func (r *reader) empty() bool { return len(*r) == 0 }

func (r *reader) read(n int) []byte {
	if n < 0 || len(*r) < n {
		return nil
	}
	v := (*r)[:n:n]
	*r = (*r)[n:]
	return v
}

func (r *reader) u8(v *uint8) bool {
	b := r.read(1)
	if b == nil {
		return false
	}
	*v = b[0]
	return true
}

func (r *reader) u32(v *uint32) bool {
	b := r.read(4)
	if b == nil {
		return false
	}
	*v = binary.BigEndian.Uint32(b)
	return true
}

func (r *reader) u64(v *uint64) bool {
	b := r.read(8)
	if b == nil {
		return false
	}
	*v = binary.BigEndian.Uint64(b)
	return true
}

// bytes sets *v to the next n bytes (aliasing the input).
func (r *reader) bytes(v *[]byte, n int) bool {
	b := r.read(n)
	if b == nil && n != 0 {
		return false
	}
	*v = b
	return true
}

// copy fills dst from the next len(dst) bytes.
func (r *reader) copy(dst []byte) bool {
	b := r.read(len(dst))
	if b == nil && len(dst) != 0 {
		return false
	}
	copy(dst, b)
	return true
}
