package handshake

import (
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/crypto/poly1305"
	"golang.org/x/crypto/salsa20/salsa"
)

// The boxes of RFC 26 are NaCl crypto_box / crypto_secretbox (XSalsa20-Poly1305) in the
// "easy" layout, MAC(16) then ciphertext. sealInPlace and openInPlace compute exactly what
// nacl/secretbox.Seal and Open compute (box with a precomputed key is secretbox with that
// key), but in place, so a MESSAGE is encrypted inside the buffer it is sent from and
// decrypted inside the buffer it was read into: no copy and no allocation per message. The
// tests compare them with x/crypto's nacl/secretbox and nacl/box on random inputs.

const tagSize = poly1305.TagSize

// keystream is the XSalsa20 state of one box: the sub-key and counter for the nonce, and
// the first 64-byte block, whose first half is the Poly1305 key and whose second half
// encrypts the first 32 plaintext bytes (the rest starts at block 1).
type keystream struct {
	subKey  [32]byte
	counter [16]byte
	block   [64]byte
}

func (ks *keystream) init(nonce *[24]byte, k *[32]byte) {
	salsa.HSalsa20(&ks.subKey, (*[16]byte)(nonce[:16]), k, &salsa.Sigma)
	copy(ks.counter[:8], nonce[16:])
	clear(ks.counter[8:])
	clear(ks.block[:])
	salsa.XORKeyStream(ks.block[:], ks.block[:], &ks.counter, &ks.subKey)
	ks.counter[8] = 1
}

func (ks *keystream) polyKey() *[32]byte { return (*[32]byte)(ks.block[:32]) }

// xor encrypts or decrypts in into out (equal lengths, overlapping entirely or not at
// all), where in starts at plaintext offset off (0 < off <= 32 only for the first call).
func (ks *keystream) xor(out, in []byte, off int) {
	first := min(len(in), max(32-off, 0))
	subtle.XORBytes(out[:first], in[:first], ks.block[32+off:32+off+first])
	if len(in) > first {
		salsa.XORKeyStream(out[first:], in[first:], &ks.counter, &ks.subKey)
	}
}

func (ks *keystream) wipe() {
	clear(ks.subKey[:])
	clear(ks.block[:])
}

// sealInPlace encrypts buf[16:] in place and writes the Poly1305 tag to buf[:16].
func sealInPlace(buf []byte, nonce *[24]byte, k *[32]byte) {
	var ks keystream
	ks.init(nonce, k)
	msg := buf[tagSize:]
	ks.xor(msg, msg, 0)
	poly1305.Sum((*[16]byte)(buf[:tagSize]), msg, ks.polyKey())
	ks.wipe()
}

// openInPlace checks the tag in buf[:16] over buf[16:] and, if it is right, decrypts
// buf[16:] in place. On failure buf is unchanged.
func openInPlace(buf []byte, nonce *[24]byte, k *[32]byte) bool {
	if len(buf) < tagSize {
		return false
	}
	var ks keystream
	ks.init(nonce, k)
	msg := buf[tagSize:]
	ok := poly1305.Verify((*[16]byte)(buf[:tagSize]), msg, ks.polyKey())
	if ok {
		ks.xor(msg, msg, 0)
	}
	ks.wipe()
	return ok
}

// sealTo writes the box of head ‖ msg into out (len(out) == tagSize+1+len(msg)): the
// plaintext is one byte, head, then msg, read from where it lies (no copy). This is how a
// MESSAGE, flags and payload, is sealed from the caller's buffer into the one that is sent.
func sealTo(out []byte, head byte, msg []byte, nonce *[24]byte, k *[32]byte) {
	var ks keystream
	ks.init(nonce, k)
	ct := out[tagSize:]
	ct[0] = head ^ ks.block[32]
	ks.xor(ct[1:], msg, 1)
	poly1305.Sum((*[16]byte)(out[:tagSize]), ct, ks.polyKey())
	ks.wipe()
}

// openTo checks the box in buf and decrypts it, except its first plaintext byte, into out
// (len(out) == len(buf)-tagSize-1), leaving buf unchanged; it returns that first byte.
func openTo(out, buf []byte, nonce *[24]byte, k *[32]byte) (head byte, ok bool) {
	if len(buf) < tagSize+1 || len(out) != len(buf)-tagSize-1 {
		return 0, false
	}
	var ks keystream
	ks.init(nonce, k)
	ct := buf[tagSize:]
	ok = poly1305.Verify((*[16]byte)(buf[:tagSize]), ct, ks.polyKey())
	if ok {
		head = ct[0] ^ ks.block[32]
		ks.xor(out, ct[1:], 1)
	}
	ks.wipe()
	return head, ok
}

// seal appends the box of msg (tag, then ciphertext) to dst.
func seal(dst, msg []byte, nonce *[24]byte, k *[32]byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, tagSize)...)
	dst = append(dst, msg...)
	sealInPlace(dst[n:], nonce, k)
	return dst
}

// open returns the plaintext of box in a new slice, or false.
func open(box []byte, nonce *[24]byte, k *[32]byte) ([]byte, bool) {
	if len(box) < tagSize {
		return nil, false
	}
	buf := append([]byte(nil), box...)
	if !openInPlace(buf, nonce, k) {
		return nil, false
	}
	return buf[tagSize:], true
}

// Nonce prefixes (RFC 26; libzmq curve_client.cpp, curve_server.cpp).
var (
	prefixHello    = [16]byte([]byte("CurveZMQHELLO---"))
	prefixInitiate = [16]byte([]byte("CurveZMQINITIATE"))
	prefixReady    = [16]byte([]byte("CurveZMQREADY---"))
	prefixMessageC = [16]byte([]byte("CurveZMQMESSAGEC"))
	prefixMessageS = [16]byte([]byte("CurveZMQMESSAGES"))
	prefixWelcome  = [8]byte([]byte("WELCOME-"))
	prefixCookie   = [8]byte([]byte("COOKIE--"))
	prefixVouch    = [8]byte([]byte("VOUCH---"))
)

// shortNonce returns prefix ‖ big-endian n: the nonce of a command with a short nonce.
func shortNonce(prefix *[16]byte, n uint64) (nonce [24]byte) {
	copy(nonce[:16], prefix[:])
	binary.BigEndian.PutUint64(nonce[16:], n)
	return nonce
}

// longNonce returns prefix ‖ tail: the nonce of WELCOME, the cookie and the vouch.
func longNonce(prefix *[8]byte, tail *[16]byte) (nonce [24]byte) {
	copy(nonce[:8], prefix[:])
	copy(nonce[8:], tail[:])
	return nonce
}
