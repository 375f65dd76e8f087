package key

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

type vectorPair struct{ name, public, secret string }

func loadPairs(t testing.TB) []vectorPair {
	t.Helper()
	f, err := os.Open("testdata/keypairs.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vectorPair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("bad vector line %q", line)
		}
		out = append(out, vectorPair{fs[0], fs[1], fs[2]})
	}
	if len(out) == 0 {
		t.Fatal("no vectors in testdata/keypairs.txt")
	}
	return out
}

func TestKnownKeyPairs(t *testing.T) {
	for _, v := range loadPairs(t) {
		t.Run(v.name, func(t *testing.T) {
			sec, err := ParseSecretKey([]byte(v.secret))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKey([]byte(v.public))
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.Public(); got != pub {
				t.Fatalf("public from secret = %s, want %s", got, v.public)
			}
			if pub.String() != v.public || sec.UnsafeZ85() != v.secret {
				t.Fatal("Z85 round trip changed the text")
			}
			kp := NewKeyPair(sec)
			if err := kp.Check(); err != nil {
				t.Fatal(err)
			}
			if err := pub.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseLengths(t *testing.T) {
	const z = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	want, err := ParsePublicKey([]byte(z))
	if err != nil {
		t.Fatal(err)
	}
	raw := want[:]
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"z85", []byte(z), true},
		{"z85+NUL", append([]byte(z), 0), true},
		{"raw", raw, true},
		{"z85+x", append([]byte(z), 'x'), false},
		{"39", []byte(z[:39]), false},
		{"empty", nil, false},
		{"123", bytes.Repeat([]byte("a"), 123), false}, // libzmq test_curve_security_invalid_keysize
		{"bad char", []byte(strings.Replace(z, "r", "\"", 1)), false},
		{"overflow", []byte("#####" + z[5:]), false},
	} {
		got, err := ParsePublicKey(c.in)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if c.ok && got != want {
			t.Errorf("%s: got %s", c.name, got)
		}
		if !c.ok && (got != PublicKey{} || !errors.Is(err, ErrInvalidKey)) {
			t.Errorf("%s: got %s, %v: want zero key and ErrInvalidKey", c.name, got, err)
		}
		sk, err := ParseSecretKey(c.in)
		if c.ok != (err == nil) || (!c.ok && !sk.IsZero()) {
			t.Errorf("%s: secret err = %v", c.name, err)
		}
		if err != nil && strings.Contains(err.Error(), string(c.in)) && len(c.in) > 0 {
			t.Errorf("%s: error echoes the input: %v", c.name, err)
		}
	}
}

func TestGenerateKeyPair(t *testing.T) {
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Check(); err != nil {
		t.Fatal(err)
	}
	// Deterministic with an injected reader, and the same as nacl/box's key generation.
	seed := bytes.Repeat([]byte{7}, 32)
	a, _ := GenerateKeyPair(bytes.NewReader(seed))
	bp, bs, _ := box.GenerateKey(bytes.NewReader(seed))
	if a.Public != PublicKey(*bp) || *a.Secret.UnsafeBytes() != *bs {
		t.Fatal("GenerateKeyPair differs from nacl/box.GenerateKey on the same randomness")
	}
	if _, err := GenerateKeyPair(bytes.NewReader(seed[:31])); err == nil {
		t.Fatal("short randomness accepted")
	}
	other, _ := GenerateKeyPair(nil)
	mixed := KeyPair{Public: other.Public, Secret: kp.Secret}
	if err := mixed.Check(); !errors.Is(err, ErrMismatch) {
		t.Fatalf("mismatched pair: %v", err)
	}
	kp.Wipe()
	if !kp.Secret.IsZero() || !kp.Public.IsZero() {
		t.Fatal("Wipe left bytes")
	}
}

// smallOrderX returns the x-coordinates of small order as integers (RFC 7748; the order-8
// values are those listed by libsodium and by Bernstein's curve25519 page).
func smallOrderX() []*big.Int {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	n := func(s string) *big.Int { v, _ := new(big.Int).SetString(s, 10); return v }
	return []*big.Int{
		big.NewInt(0), big.NewInt(1),
		n("325606250916557431795983626356110631294008115727848805560023387167927233504"),
		n("39382357235489614581723060781553021112529911719440698176882885853963445705823"),
		new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Set(p), new(big.Int).Add(p, big.NewInt(1)),
	}
}

func littleEndian(v *big.Int) (k PublicKey) {
	b := v.Bytes()
	for i := range b {
		k[i] = b[len(b)-1-i]
	}
	return k
}

// TestSmallOrderPoints feeds every small-order point, with bit 255 clear and set, to Check,
// to Precompute and to X25519 itself (which must agree that they are of small order).
func TestSmallOrderPoints(t *testing.T) {
	secret := mustGenerate(t).Secret
	points := smallOrderX()
	if len(points) != len(lowOrder) {
		t.Fatal("table and list differ in length")
	}
	for i, x := range points {
		k := littleEndian(x)
		if k != PublicKey(lowOrder[i]) {
			t.Fatalf("table entry %d is %x, want %x", i, lowOrder[i], k)
		}
		for _, high := range []bool{false, true} {
			k := k
			if high {
				k[31] |= 0x80
			}
			name := hex.EncodeToString(k[:])
			if err := k.Check(); !errors.Is(err, ErrLowOrder) {
				t.Errorf("%s: Check = %v", name, err)
			}
			var shared [32]byte
			shared[0] = 1
			if err := Precompute(&shared, &k, &secret); !errors.Is(err, ErrLowOrder) || shared != [32]byte{} {
				t.Errorf("%s: Precompute = %v, shared %x", name, err, shared)
			}
			if _, err := curve25519.X25519(secret.UnsafeBytes()[:], k[:]); err == nil {
				t.Errorf("%s: X25519 accepted it, so it is not of small order", name)
			}
			// nacl/box would have agreed on an all-zero DH output: the hazard we avoid.
			var naclKey [32]byte
			pk := [32]byte(k)
			box.Precompute(&naclKey, &pk, secret.UnsafeBytes())
		}
	}
	// An ordinary key passes.
	if err := mustGenerate(t).Public.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestPrecomputeMatchesNaCl(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	var ours, theirs, reverse [32]byte
	if err := Precompute(&ours, &b.Public, &a.Secret); err != nil {
		t.Fatal(err)
	}
	if err := Precompute(&reverse, &a.Public, &b.Secret); err != nil {
		t.Fatal(err)
	}
	bp := [32]byte(b.Public)
	box.Precompute(&theirs, &bp, a.Secret.UnsafeBytes())
	if ours != theirs || ours != reverse {
		t.Fatal("Precompute differs from crypto_box_beforenm")
	}
}

// TestSecretNeverFormats formats the secret-bearing types with every verb, directly, by
// pointer and inside a struct, and looks for the secret in Z85, hex and raw form.
func TestSecretNeverFormats(t *testing.T) {
	kp := mustGenerate(t)
	z := kp.Secret.UnsafeZ85()
	raw := string(kp.Secret.UnsafeBytes()[:])
	hx := hex.EncodeToString(kp.Secret.UnsafeBytes()[:])
	type holder struct {
		Exported SecretKey
		Pair     KeyPair
	}
	values := []any{kp.Secret, &kp.Secret, kp, &kp, holder{kp.Secret, kp}, []SecretKey{kp.Secret}, map[string]KeyPair{"k": kp}}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%100v"} {
			out := fmt.Sprintf(verb, v)
			for _, leak := range []string{z, raw, hx, strings.ToUpper(hx), fmt.Sprint(*kp.Secret.UnsafeBytes())} {
				if strings.Contains(out, leak) {
					t.Errorf("%s of %T leaks the secret: %s", verb, v, out)
				}
			}
		}
	}
	if s := fmt.Sprint(kp.Secret); s != "REDACTED" {
		t.Errorf("Sprint = %q", s)
	}
}

func mustGenerate(t testing.TB) KeyPair {
	kp, err := GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestAgreement: an Agreement gives the same box keys as Precompute, refuses small-order
// points, and stops working once wiped.
func TestAgreement(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	kp, ag, err := GenerateAgreement(nil)
	if err != nil || kp.Check() != nil {
		t.Fatalf("GenerateAgreement: %v", err)
	}
	var x, y [32]byte
	if err := ag.Precompute(&x, &b.Public); err != nil {
		t.Fatal(err)
	}
	if err := Precompute(&y, &b.Public, &kp.Secret); err != nil || x != y {
		t.Fatal("agreement and Precompute differ")
	}
	la := NewAgreement(&a.Secret)
	if err := la.Precompute(&x, &b.Public); err != nil {
		t.Fatal(err)
	}
	if err := Precompute(&y, &a.Public, &b.Secret); err != nil || x != y {
		t.Fatal("long-term agreement differs from the peer's view")
	}
	for _, p := range smallOrderX() {
		k := littleEndian(p)
		if err := la.Precompute(&x, &k); !errors.Is(err, ErrLowOrder) || x != [32]byte{} {
			t.Fatalf("small-order point accepted: %v", err)
		}
	}
	// Deterministic: the same randomness gives the same pair as GenerateKeyPair.
	seed := bytes.Repeat([]byte{3}, 32)
	p1, _, _ := GenerateAgreement(bytes.NewReader(seed))
	p2, _ := GenerateKeyPair(bytes.NewReader(seed))
	if p1.Public != p2.Public {
		t.Fatal("GenerateAgreement and GenerateKeyPair differ")
	}
	if s := fmt.Sprintf("%v %+v %#v %s %x", la, la, la, la, la); strings.Contains(s, hex.EncodeToString(a.Secret.UnsafeBytes()[:])) {
		t.Fatal("agreement printed its key")
	}
	la.Wipe()
	if !la.Wiped() || la.Precompute(&x, &b.Public) == nil {
		t.Fatal("wiped agreement still works")
	}
}

// TestNonCanonical: a public key with bit 255 set, or at least 2^255-19, is refused by Check
// and by every agreement: X25519 would take it for another key's encoding, and a server
// would then authenticate a client under a second key (found by FuzzHandshake).
func TestNonCanonical(t *testing.T) {
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Wipe()
	high := kp.Public
	high[31] |= 0x80
	var big PublicKey // 2^255-19+5: the value 5, encoded non-canonically
	for i := range big {
		big[i] = 0xff
	}
	big[0], big[31] = 0xf2, 0x7f
	var below PublicKey // 2^255-20: the largest canonical value
	for i := range below {
		below[i] = 0xff
	}
	below[0], below[31] = 0xec, 0x7f
	for name, k := range map[string]PublicKey{"bit 255 set": high, "p+5": big} {
		if err := k.Check(); !errors.Is(err, ErrNonCanonical) {
			t.Errorf("%s: Check: %v", name, err)
		}
		var shared [Size]byte
		if err := Precompute(&shared, &k, &kp.Secret); !errors.Is(err, ErrNonCanonical) || shared != [Size]byte{} {
			t.Errorf("%s: Precompute: %v", name, err)
		}
	}
	if err := kp.Public.Check(); err != nil {
		t.Errorf("a generated key: %v", err)
	}
	if !isCanonical(&below) {
		t.Error("p-1 is canonical")
	}
}
