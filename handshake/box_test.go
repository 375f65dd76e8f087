package handshake

import (
	"bytes"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// TestBoxMatchesNaCl checks the in-place construction against x/crypto's nacl/secretbox
// (and so against libsodium's crypto_box_easy_afternm, which it matches) on many sizes,
// including the 32-byte boundary of the first Salsa20 block.
func TestBoxMatchesNaCl(t *testing.T) {
	var k [32]byte
	var n [24]byte
	rand.Read(k[:])
	for _, size := range []int{0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 200, 1023, 1024, 4096, 65536} {
		rand.Read(n[:])
		msg := make([]byte, size)
		rand.Read(msg)
		want := secretbox.Seal(nil, msg, &n, &k)
		buf := append(make([]byte, tagSize), msg...)
		sealInPlace(buf, &n, &k)
		if !bytes.Equal(buf, want) {
			t.Fatalf("size %d: sealInPlace differs from secretbox.Seal", size)
		}
		if !openInPlace(buf, &n, &k) || !bytes.Equal(buf[tagSize:], msg) {
			t.Fatalf("size %d: openInPlace failed", size)
		}
		if got, ok := open(want, &n, &k); !ok || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: open failed", size)
		}
	}
}

// TestBoxFlipEveryByte: any altered byte of a box makes it fail to open, and a failed open
// leaves the buffer as it was.
func TestBoxFlipEveryByte(t *testing.T) {
	var k [32]byte
	var n [24]byte
	rand.Read(k[:])
	rand.Read(n[:])
	sealed := seal(nil, []byte("a message of some length, longer than one block of 32"), &n, &k)
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x40
		before := bytes.Clone(b)
		if openInPlace(b, &n, &k) {
			t.Fatalf("byte %d flipped: box still opens", i)
		}
		if !bytes.Equal(b, before) {
			t.Fatalf("byte %d flipped: failed open changed the buffer", i)
		}
	}
	if openInPlace(sealed[:tagSize-1], &n, &k) {
		t.Fatal("short box opened")
	}
}

// TestBoxPrecomputedIsBox: a box with a precomputed key is nacl/box's (crypto_box_afternm).
func TestBoxPrecomputedIsBox(t *testing.T) {
	pa, sa, _ := box.GenerateKey(rand.Reader)
	pb, sb, _ := box.GenerateKey(rand.Reader)
	var shared [32]byte
	box.Precompute(&shared, pb, sa)
	var n [24]byte
	rand.Read(n[:])
	msg := []byte("hello")
	if !bytes.Equal(seal(nil, msg, &n, &shared), box.Seal(nil, msg, &n, pb, sa)) {
		t.Fatal("seal with a precomputed key differs from box.Seal")
	}
	if got, ok := box.Open(nil, seal(nil, msg, &n, &shared), &n, pa, sb); !ok || !bytes.Equal(got, msg) {
		t.Fatal("box.Open refused our box")
	}
}

// TestSealToOpenTo: the out-of-place forms give the bytes of the in-place ones (so those of
// nacl/secretbox) for every size around the first block's boundary, and reject any flip.
func TestSealToOpenTo(t *testing.T) {
	var k [32]byte
	var n [24]byte
	rand.Read(k[:])
	for _, size := range []int{0, 1, 30, 31, 32, 33, 63, 64, 65, 1000, 65536} {
		rand.Read(n[:])
		msg := make([]byte, size)
		rand.Read(msg)
		plain := append([]byte{0x81}, msg...)
		want := secretbox.Seal(nil, plain, &n, &k)
		out := make([]byte, tagSize+1+size)
		sealTo(out, 0x81, msg, &n, &k)
		if !bytes.Equal(out, want) {
			t.Fatalf("size %d: sealTo differs from secretbox.Seal", size)
		}
		got := make([]byte, size)
		head, ok := openTo(got, want, &n, &k)
		if !ok || head != 0x81 || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: openTo failed", size)
		}
		for _, i := range []int{0, tagSize, len(want) - 1} {
			bad := bytes.Clone(want)
			bad[i] ^= 1
			if _, ok := openTo(got, bad, &n, &k); ok {
				t.Fatalf("size %d: flipped byte %d opened", size, i)
			}
		}
	}
}
