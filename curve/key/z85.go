package key

import (
	"errors"
	"fmt"
)

// Z85 is the ZeroMQ Base-85 encoding of ZMQ RFC 32 (https://rfc.zeromq.org/spec/32/):
// every 4 input bytes become 5 printable characters, most significant first.

// Z85Alphabet is the alphabet of ZMQ RFC 32, in value order.
const Z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

const z85Alphabet = Z85Alphabet

// z85Decoder maps a character to its value, or 0xFF when it is not in the alphabet.
var z85Decoder = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(z85Alphabet); i++ {
		t[z85Alphabet[i]] = byte(i)
	}
	return t
}()

// ErrInvalidZ85 is returned (wrapped) for text that is not valid Z85: a length that is not a
// multiple of 5, a character outside the alphabet, or a group whose value exceeds 2^32-1.
var ErrInvalidZ85 = errors.New("key: invalid Z85")

// EncodeZ85 returns the Z85 text of src, whose length must be a multiple of 4 (RFC 32).
func EncodeZ85(src []byte) (string, error) {
	if len(src)%4 != 0 {
		return "", fmt.Errorf("key: Z85 input length %d is not a multiple of 4", len(src))
	}
	dst := make([]byte, len(src)/4*5)
	encodeZ85(dst, src)
	return string(dst), nil
}

// encodeZ85 writes len(src)/4*5 characters to dst; len(src) is a multiple of 4.
func encodeZ85(dst, src []byte) {
	for len(src) >= 4 {
		v := uint32(src[0])<<24 | uint32(src[1])<<16 | uint32(src[2])<<8 | uint32(src[3])
		for i := 4; i >= 0; i-- {
			dst[i] = z85Alphabet[v%85]
			v /= 85
		}
		src, dst = src[4:], dst[5:]
	}
}

// DecodeZ85 returns the bytes that the Z85 text s encodes (RFC 32). It rejects lengths that
// are not a multiple of 5, characters outside the alphabet and 5-character groups whose value
// exceeds 2^32-1, as libzmq's zmq_z85_decode does.
func DecodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 5", ErrInvalidZ85, len(s))
	}
	dst := make([]byte, len(s)/5*4)
	if err := decodeZ85(dst, s); err != nil {
		return nil, err
	}
	return dst, nil
}

// decodeZ85 fills dst (len(s)/5*4 bytes) from s, whose length is a multiple of 5. It never
// names the offending character: the text may be a secret key.
func decodeZ85(dst []byte, s string) error {
	for g := 0; g+5 <= len(s); g += 5 {
		var v uint64
		for i := 0; i < 5; i++ {
			d := z85Decoder[s[g+i]]
			if d == 0xFF {
				return fmt.Errorf("%w: character at offset %d is not in the alphabet", ErrInvalidZ85, g+i)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return fmt.Errorf("%w: group at offset %d exceeds 2^32-1", ErrInvalidZ85, g)
		}
		o := g / 5 * 4
		dst[o], dst[o+1], dst[o+2], dst[o+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return nil
}
