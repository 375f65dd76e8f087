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

// xsalsaSetup derives the XSalsa20 sub-key and counter block for a 24-byte nonce.
func xsalsaSetup(subKey *[32]byte, counter *[16]byte, nonce *[24]byte, k *[32]byte) {
	salsa.HSalsa20(subKey, (*[16]byte)(nonce[:16]), k, &salsa.Sigma)
	copy(counter[:8], nonce[16:])
	clear(counter[8:])
}

// sealInPlace encrypts buf[16:] in place and writes the Poly1305 tag to buf[:16].
func sealInPlace(buf []byte, nonce *[24]byte, k *[32]byte) {
	var subKey, polyKey [32]byte
	var counter [16]byte
	var block [64]byte
	xsalsaSetup(&subKey, &counter, nonce, k)
	salsa.XORKeyStream(block[:], block[:], &counter, &subKey)
	copy(polyKey[:], block[:32])
	msg := buf[tagSize:]
	first := min(len(msg), 32)
	subtle.XORBytes(msg[:first], msg[:first], block[32:32+first])
	if len(msg) > first {
		counter[8] = 1
		salsa.XORKeyStream(msg[first:], msg[first:], &counter, &subKey)
	}
	poly1305.Sum((*[16]byte)(buf[:tagSize]), msg, &polyKey)
	clear(subKey[:])
	clear(polyKey[:])
	clear(block[:])
}

// openInPlace checks the tag in buf[:16] over buf[16:] and, if it is right, decrypts
// buf[16:] in place. On failure buf is unchanged.
func openInPlace(buf []byte, nonce *[24]byte, k *[32]byte) bool {
	if len(buf) < tagSize {
		return false
	}
	var subKey, polyKey [32]byte
	var counter [16]byte
	var block [64]byte
	xsalsaSetup(&subKey, &counter, nonce, k)
	salsa.XORKeyStream(block[:], block[:], &counter, &subKey)
	copy(polyKey[:], block[:32])
	msg := buf[tagSize:]
	ok := poly1305.Verify((*[16]byte)(buf[:tagSize]), msg, &polyKey)
	if ok {
		first := min(len(msg), 32)
		subtle.XORBytes(msg[:first], msg[:first], block[32:32+first])
		if len(msg) > first {
			counter[8] = 1
			salsa.XORKeyStream(msg[first:], msg[first:], &counter, &subKey)
		}
	}
	clear(subKey[:])
	clear(polyKey[:])
	clear(block[:])
	return ok
}

// sealTo writes the box of head ‖ msg into out (len(out) == tagSize+1+len(msg)): the
// plaintext is one byte, head, then msg, read from where it lies (no copy). This is how a
// MESSAGE, flags and payload, is sealed from the caller's buffer into the one that is sent.
func sealTo(out []byte, head byte, msg []byte, nonce *[24]byte, k *[32]byte) {
	var subKey, polyKey [32]byte
	var counter [16]byte
	var block [64]byte
	xsalsaSetup(&subKey, &counter, nonce, k)
	salsa.XORKeyStream(block[:], block[:], &counter, &subKey)
	copy(polyKey[:], block[:32])
	ct := out[tagSize:]
	// Plaintext bytes 0..31 use block 0's second half: head, then up to 31 bytes of msg.
	ct[0] = head ^ block[32]
	first := min(len(msg), 31)
	subtle.XORBytes(ct[1:1+first], msg[:first], block[33:33+first])
	if len(msg) > first {
		counter[8] = 1
		salsa.XORKeyStream(ct[1+first:], msg[first:], &counter, &subKey)
	}
	poly1305.Sum((*[16]byte)(out[:tagSize]), ct, &polyKey)
	clear(subKey[:])
	clear(polyKey[:])
	clear(block[:])
}

// openTo checks the box in buf and decrypts it, except its first plaintext byte, into out
// (len(out) == len(buf)-tagSize-1), leaving buf unchanged; it returns that first byte.
func openTo(out, buf []byte, nonce *[24]byte, k *[32]byte) (head byte, ok bool) {
	if len(buf) < tagSize+1 || len(out) != len(buf)-tagSize-1 {
		return 0, false
	}
	var subKey, polyKey [32]byte
	var counter [16]byte
	var block [64]byte
	xsalsaSetup(&subKey, &counter, nonce, k)
	salsa.XORKeyStream(block[:], block[:], &counter, &subKey)
	copy(polyKey[:], block[:32])
	ct := buf[tagSize:]
	ok = poly1305.Verify((*[16]byte)(buf[:tagSize]), ct, &polyKey)
	if ok {
		head = ct[0] ^ block[32]
		first := min(len(out), 31)
		subtle.XORBytes(out[:first], ct[1:1+first], block[33:33+first])
		if len(out) > first {
			counter[8] = 1
			salsa.XORKeyStream(out[first:], ct[1+first:], &counter, &subKey)
		}
	}
	clear(subKey[:])
	clear(polyKey[:])
	clear(block[:])
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
