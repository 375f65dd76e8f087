package key

import (
	"bytes"
	"errors"
	"testing"
)

// The example of ZMQ RFC 32, section "Test Case".
var rfc32 = struct {
	raw  []byte
	text string
}{[]byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}, "HelloWorld"}

func TestZ85RFCVector(t *testing.T) {
	s, err := EncodeZ85(rfc32.raw)
	if err != nil || s != rfc32.text {
		t.Fatalf("EncodeZ85 = %q, %v", s, err)
	}
	b, err := DecodeZ85(rfc32.text)
	if err != nil || !bytes.Equal(b, rfc32.raw) {
		t.Fatalf("DecodeZ85 = %x, %v", b, err)
	}
}

func TestZ85Rejects(t *testing.T) {
	for _, s := range []string{"Hello", "HelloWorl", "Hell\"", "Hell ", "Hell\x00", "#####", "%nSc1"} {
		got, err := DecodeZ85(s)
		if s == "Hello" {
			if err != nil {
				t.Errorf("%q: %v", s, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidZ85) || got != nil {
			t.Errorf("%q: got %x, %v", s, got, err)
		}
	}
	// The largest group, 2^32-1, is "%nSc0"; one more overflows.
	if b, err := DecodeZ85("%nSc0"); err != nil || !bytes.Equal(b, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("%%nSc0 = %x, %v", b, err)
	}
	if _, err := DecodeZ85("%nSc1"); err == nil {
		t.Fatal("2^32 accepted")
	}
	if _, err := EncodeZ85([]byte{1, 2, 3}); err == nil {
		t.Fatal("length 3 encoded")
	}
}

// FuzzZ85 checks that decoding never panics, gives nil on error, and that whatever decodes
// re-encodes to the same text (Z85 has one text per byte string).
func FuzzZ85(f *testing.F) {
	f.Add(rfc32.text)
	f.Add("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	f.Add("%nSc0%nSc1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeZ85(s)
		if err != nil {
			if b != nil {
				t.Fatal("non-nil bytes on error")
			}
			return
		}
		again, err := EncodeZ85(b)
		if err != nil || again != s {
			t.Fatalf("re-encoding %q gave %q, %v", s, again, err)
		}
		if len(b) == Size {
			if _, err := ParsePublicKey([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
	})
}
