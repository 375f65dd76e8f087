// Package key holds the CurveZMQ key types: Curve25519 public and secret keys, key pairs,
// their Z85 text form (ZMQ RFC 32) and the one safe way to turn a key pair into a shared
// box key.
//
// It is the leaf of the module: it imports only golang.org/x/crypto, so the handshake,
// keystore and authenticator packages can all use it.
//
// # Secrets
//
// A [SecretKey] never prints itself: every fmt verb, String and GoString give REDACTED.
// The bytes leave only through the explicitly named [SecretKey.UnsafeBytes] and
// [SecretKey.UnsafeZ85], and [SecretKey.Wipe] zeroes them. Go's garbage collector may
// have copied a value before it was wiped; wiping narrows the window, it cannot close it.
//
// # Key text
//
// Like libzmq's ZMQ_CURVE_*KEY options, the parsers accept a key as 40 Z85 characters, as
// 41 bytes (40 Z85 characters and a trailing NUL) or as 32 raw bytes; anything else is
// rejected with [ErrInvalidKey].
package key

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/salsa20/salsa"
)

const (
	// Size is the length of a Curve25519 key in bytes.
	Size = 32
	// Z85Len is the length of a key in Z85 text.
	Z85Len = 40
)

var (
	// ErrInvalidKey is returned (wrapped) for key text or bytes of the wrong length or encoding.
	ErrInvalidKey = errors.New("key: invalid key")
	// ErrLowOrder is returned (wrapped) for a public key that is all zeros or of small order,
	// or when a shared secret would be all zeros (RFC 7748, Section 6.1).
	ErrLowOrder = errors.New("key: all-zero or low-order public key")
	// ErrNonCanonical is returned (wrapped) for a public key encoded non-canonically: bit
	// 255 set, or a value of at least 2^255-19. X25519 reduces such an encoding to another
	// key's, so one secret would answer to two public keys; no key generator makes one.
	ErrNonCanonical = errors.New("key: non-canonical public key")
	// ErrMismatch is returned when a public key is not the one its secret key derives.
	ErrMismatch = errors.New("key: public key does not match secret key")
)

// PublicKey is a Curve25519 public key. Its String method gives the Z85 text.
type PublicKey [Size]byte

// ParsePublicKey decodes a public key given as 40 Z85 characters, 41 bytes (Z85 and a
// trailing NUL) or 32 raw bytes. It does not check the key's order; see [PublicKey.Check].
func ParsePublicKey(b []byte) (PublicKey, error) {
	var k PublicKey
	if err := parse((*[Size]byte)(&k), b, "public"); err != nil {
		return PublicKey{}, err
	}
	return k, nil
}

// String returns the key as 40 Z85 characters.
func (k PublicKey) String() string {
	var buf [Z85Len]byte
	encodeZ85(buf[:], k[:])
	return string(buf[:])
}

// Short returns an abbreviation of the key for logs: its first 8 Z85 characters and "...".
func (k PublicKey) Short() string {
	return k.String()[:8] + "..."
}

// MarshalText implements encoding.TextMarshaler with the Z85 text.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what [ParsePublicKey] accepts.
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(b)
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// IsZero reports whether the key is all zeros (libzmq's "null key").
func (k PublicKey) IsZero() bool {
	var z PublicKey
	return subtle.ConstantTimeCompare(k[:], z[:]) == 1
}

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool {
	return subtle.ConstantTimeCompare(k[:], o[:]) == 1
}

// Check returns an error wrapping [ErrLowOrder] if k is all zeros or one of the
// small-order points of Curve25519 (in any of their encodings), with which no shared
// secret can be agreed, and one wrapping [ErrNonCanonical] if k is not the canonical
// encoding of its point. libsodium refuses low-order keys during the box operation; we
// refuse them up front as well, and non-canonical ones too (libzmq takes them, so that a
// client can be authenticated under a second encoding of its key).
func (k PublicKey) Check() error {
	if isLowOrder(&k) {
		return fmt.Errorf("%w", ErrLowOrder)
	}
	if !isCanonical(&k) {
		return fmt.Errorf("%w", ErrNonCanonical)
	}
	return nil
}

// isCanonical reports whether k is below 2^255-19 with bit 255 clear.
func isCanonical(k *PublicKey) bool {
	if k[31]&0x80 != 0 {
		return false
	}
	if k[31] != 0x7f || k[0] < 0xed {
		return true
	}
	for _, b := range k[1:31] {
		if b != 0xff {
			return true
		}
	}
	return false
}

// SecretKey is a Curve25519 secret key. It formats as REDACTED with every fmt verb.
type SecretKey struct {
	b [Size]byte
}

// ParseSecretKey decodes a secret key given as 40 Z85 characters, 41 bytes (Z85 and a
// trailing NUL) or 32 raw bytes. Errors never contain the input.
func ParseSecretKey(b []byte) (SecretKey, error) {
	var s SecretKey
	if err := parse(&s.b, b, "secret"); err != nil {
		return SecretKey{}, err
	}
	return s, nil
}

// Public returns the public key of s (X25519 with the base point).
func (s *SecretKey) Public() PublicKey {
	priv := s.ecdh()
	var p PublicKey
	copy(p[:], priv.PublicKey().Bytes())
	return p
}

// ecdh returns s as a crypto/ecdh key, whose construction derives the public key (one
// scalar multiplication). crypto/ecdh keeps its own copy of the scalar, which this package
// cannot zero; it is garbage once the key is dropped, as are the copies that
// golang.org/x/crypto/curve25519.X25519 makes on every call.
func (s *SecretKey) ecdh() *ecdh.PrivateKey {
	priv, err := ecdh.X25519().NewPrivateKey(s.b[:])
	if err != nil {
		// Unreachable: every 32-byte string is an X25519 private key.
		panic("key: X25519 private key rejected")
	}
	return priv
}

// IsZero reports whether s is all zeros (libzmq's "null key", or a wiped key).
func (s *SecretKey) IsZero() bool {
	var z [Size]byte
	return subtle.ConstantTimeCompare(s.b[:], z[:]) == 1
}

// Wipe zeroes the key.
func (s *SecretKey) Wipe() { clear(s.b[:]) }

// UnsafeBytes returns a pointer to the key's bytes, for crypto and for writing key files.
// Whoever calls it is responsible for not logging or keeping the bytes.
func (s *SecretKey) UnsafeBytes() *[Size]byte { return &s.b }

// UnsafeZ85 returns the key as 40 Z85 characters, for writing key files. Whoever calls it
// is responsible for not logging the text; Go strings cannot be wiped.
func (s *SecretKey) UnsafeZ85() string {
	var buf [Z85Len]byte
	encodeZ85(buf[:], s.b[:])
	t := string(buf[:])
	clear(buf[:])
	return t
}

// UnsafeAppendZ85 appends the key's 40 Z85 characters to dst, for writing key files
// without leaving the text in a string, which could not be wiped. Whoever calls it is
// responsible for the bytes.
func (s *SecretKey) UnsafeAppendZ85(dst []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, Z85Len)...)
	encodeZ85(dst[n:], s.b[:])
	return dst
}

// String returns "REDACTED".
func (SecretKey) String() string { return "REDACTED" }

// GoString returns a redacted Go syntax representation.
func (SecretKey) GoString() string { return "key.SecretKey{REDACTED}" }

// Format prints REDACTED for every verb, so that no fmt verb (%v %+v %#v %s %q %x ...) can
// print the key.
func (s SecretKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, "REDACTED")
}

// KeyPair is a public key with its secret key.
type KeyPair struct {
	Public PublicKey
	Secret SecretKey
}

// GenerateKeyPair returns a new key pair made from 32 bytes of rand, or of crypto/rand when
// rand is nil.
func GenerateKeyPair(rand io.Reader) (KeyPair, error) {
	var kp KeyPair
	if err := generate(&kp, rand); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

func generate(kp *KeyPair, r io.Reader) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, kp.Secret.b[:]); err != nil {
		kp.Secret.Wipe()
		return fmt.Errorf("key: reading randomness: %w", err)
	}
	kp.Public = kp.Secret.Public()
	return nil
}

// NewKeyPair returns the key pair of secret, deriving the public key.
func NewKeyPair(secret SecretKey) KeyPair {
	return KeyPair{Public: secret.Public(), Secret: secret}
}

// Check returns [ErrMismatch] unless kp.Public is the public key of kp.Secret, the check
// libzmq's users skip when they pair unrelated keys (a handshake that can never succeed).
func (kp *KeyPair) Check() error {
	if !kp.Secret.Public().Equal(kp.Public) {
		return ErrMismatch
	}
	return nil
}

// Wipe zeroes the secret key and the public key.
func (kp *KeyPair) Wipe() {
	kp.Secret.Wipe()
	clear(kp.Public[:])
}

// Precompute sets shared to the crypto_box key of secret and peer (X25519, then HSalsa20 with
// a zero nonce, as crypto_box_beforenm). It fails with [ErrNonCanonical] when peer is not
// canonically encoded, and with [ErrLowOrder] when peer is all zeros or
// of small order, or when the X25519 result would be all zeros, where nacl/box.Precompute
// would silently return a key anyone can compute. On error shared is zeroed.
//
// It costs two scalar multiplications; an [Agreement] made once does each further one in
// one.
func Precompute(shared *[Size]byte, peer *PublicKey, secret *SecretKey) error {
	return agree(shared, peer, secret.ecdh())
}

// Agreement is a secret key made ready for repeated key agreements (crypto/ecdh keeps the
// public key it derives, so each Precompute costs one scalar multiplication instead of
// two). Wipe drops it; see SecretKey for what cannot be zeroed.
type Agreement struct {
	priv *ecdh.PrivateKey
}

// NewAgreement makes secret ready for repeated agreements (one scalar multiplication).
func NewAgreement(secret *SecretKey) *Agreement { return &Agreement{priv: secret.ecdh()} }

// GenerateAgreement returns a new key pair and its Agreement, from 32 bytes of rand (or of
// crypto/rand when rand is nil), for one scalar multiplication in all.
func GenerateAgreement(rand io.Reader) (KeyPair, *Agreement, error) {
	var kp KeyPair
	if rand == nil {
		rand = cryptoRand
	}
	if _, err := io.ReadFull(rand, kp.Secret.b[:]); err != nil {
		kp.Secret.Wipe()
		return KeyPair{}, nil, fmt.Errorf("key: reading randomness: %w", err)
	}
	priv := kp.Secret.ecdh()
	copy(kp.Public[:], priv.PublicKey().Bytes())
	return kp, &Agreement{priv: priv}, nil
}

// Precompute is the package-level Precompute with this agreement's secret key.
func (a *Agreement) Precompute(shared *[Size]byte, peer *PublicKey) error {
	if a == nil || a.priv == nil {
		clear(shared[:])
		return errors.New("key: agreement wiped")
	}
	return agree(shared, peer, a.priv)
}

// Wipe drops the agreement's key.
func (a *Agreement) Wipe() {
	if a != nil {
		a.priv = nil
	}
}

// Wiped reports whether the agreement's key has been dropped.
func (a *Agreement) Wiped() bool { return a.priv == nil }

// String returns "REDACTED".
func (*Agreement) String() string { return "key.Agreement(REDACTED)" }

// Format prints String for every verb.
func (a *Agreement) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

var cryptoRand = rand.Reader

func agree(shared *[Size]byte, peer *PublicKey, priv *ecdh.PrivateKey) error {
	if isLowOrder(peer) {
		clear(shared[:])
		return ErrLowOrder
	}
	if !isCanonical(peer) {
		clear(shared[:])
		return ErrNonCanonical
	}
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		clear(shared[:])
		return ErrLowOrder
	}
	out, err := priv.ECDH(pub) // fails on an all-zero result (RFC 7748, Section 6.1)
	if err != nil {
		clear(shared[:])
		return ErrLowOrder
	}
	var dh [Size]byte
	copy(dh[:], out)
	clear(out)
	var zero [16]byte
	salsa.HSalsa20(shared, &zero, &dh, &salsa.Sigma)
	clear(dh[:])
	return nil
}

// parse decodes b into dst by the libzmq rules: 32 raw bytes, 40 Z85 characters or 41
// bytes ending in NUL. kind names the key in errors; the input never appears in them.
func parse(dst *[Size]byte, b []byte, kind string) error {
	switch {
	case len(b) == Size:
		copy(dst[:], b)
		return nil
	case len(b) == Z85Len+1 && b[Z85Len] == 0:
		b = b[:Z85Len]
	case len(b) == Z85Len:
	default:
		return fmt.Errorf("%w: %s key is %d bytes, want 32 raw bytes or 40 Z85 characters", ErrInvalidKey, kind, len(b))
	}
	if err := decodeZ85(dst[:], string(b)); err != nil {
		clear(dst[:])
		return fmt.Errorf("%w: %s key: %w", ErrInvalidKey, kind, err)
	}
	return nil
}
