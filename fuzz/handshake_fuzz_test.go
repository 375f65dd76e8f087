package fuzz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// script turns the fuzzer's bytes into decisions; past the end it answers zero.
type script struct{ b []byte }

func (s *script) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return v
}

func (s *script) u16() int { return int(s.byte())<<8 | int(s.byte()) }

// detRand is deterministic randomness (SHA-256 counter mode), so that a failing input
// replays exactly.
type detRand struct {
	seed [32]byte
	n    uint64
	buf  []byte
}

func (r *detRand) Read(p []byte) (int, error) {
	for i := range p {
		if len(r.buf) == 0 {
			var in [40]byte
			copy(in[:], r.seed[:])
			binary.BigEndian.PutUint64(in[32:], r.n)
			r.n++
			h := sha256.Sum256(in[:])
			r.buf = h[:]
		}
		p[i], r.buf = r.buf[0], r.buf[1:]
	}
	return len(p), nil
}

var stages = []string{"hello-plain", "cookie-plain", "welcome-plain", "vouch-plain", "initiate-plain",
	"ready-plain", "hello-nonce", "initiate-nonce", "ready-nonce", "message-nonce"}

// mutator returns a Tamper hook that applies, at most once per stage, the mutation the
// script chooses for that stage: flip a bit, set a byte, truncate, extend, or leave alone.
func mutator(s *script) func(string, []byte) []byte {
	plan := map[string][4]int{}
	for _, st := range stages {
		plan[st] = [4]int{int(s.byte() % 6), s.u16(), int(s.byte()), int(s.byte())}
	}
	return func(stage string, b []byte) []byte {
		p := plan[stage]
		if len(b) == 0 {
			return b
		}
		b = bytes.Clone(b)
		at := p[1] % len(b)
		switch p[0] {
		case 1:
			b[at] ^= 1 << (p[2] % 8)
		case 2:
			b[at] = byte(p[3])
		case 3:
			b = b[:at]
		case 4:
			b = append(b, bytes.Repeat([]byte{byte(p[3])}, p[2]%40)...)
		}
		return b
	}
}

// FuzzHandshake runs a whole handshake and a few MESSAGEs each way with fuzzer-chosen
// mutations of plaintexts and nonces on either side, and checks that nothing panics; that
// a failing step returns no output and leaves its side wiped; that a server never
// authenticates any key but the client's real one (the vouch can only be made with the
// client's secret); and that a completed session opens exactly what it should.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{})                                           // nothing mutated: must succeed
	f.Add([]byte{1, 0, 3, 0, 0})                              // flip a bit of HELLO's plaintext
	f.Add(bytes.Repeat([]byte{0, 0, 0, 0, 0}, 3))             // nothing, explicitly
	f.Add(append(bytes.Repeat([]byte{0}, 15), 2, 0, 0, 0, 9)) // set a byte of the vouch
	f.Add(append(bytes.Repeat([]byte{0}, 20), 4, 0, 5, 7, 1)) // extend INITIATE's plaintext
	f.Add(append(bytes.Repeat([]byte{0}, 45), 2, 0, 7, 0, 0)) // message nonce
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &script{b: in}
		seed := sha256.Sum256(in)
		srvKP, _ := key.GenerateKeyPair(&detRand{seed: sha256.Sum256([]byte("server long-term"))})
		cliKP, _ := key.GenerateKeyPair(&detRand{seed: sha256.Sum256([]byte("client long-term"))})
		ccfg := &handshake.Config{KeyPair: &cliKP, ServerKey: srvKP.Public, Rand: &detRand{seed: seed},
			Metadata: handshake.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}}}
		scfg := &handshake.Config{KeyPair: &srvKP, Rand: &detRand{seed: sha256.Sum256(seed[:])},
			Metadata: handshake.Metadata{{Name: "Socket-Type", Value: []byte("ROUTER")}}}
		// The first byte picks the side to mutate (or both).
		switch s.byte() % 3 {
		case 0:
			ccfg.Tamper = mutator(s)
		case 1:
			scfg.Tamper = mutator(s)
		default:
			ccfg.Tamper, scfg.Tamper = mutator(s), mutator(s)
		}
		c, err := handshake.NewClient(ccfg)
		if err != nil {
			t.Fatal(err)
		}
		sv, err := handshake.NewServer(scfg)
		if err != nil {
			t.Fatal(err)
		}
		failed := func(step string, out []byte, err error, wiped bool) bool {
			if err == nil {
				return false
			}
			if len(out) != 0 && !errors.Is(err, handshake.ErrAuth) {
				t.Fatalf("%s failed with output: %v", step, err)
			}
			if !wiped {
				t.Fatalf("%s failed without wiping: %v", step, err)
			}
			return true
		}
		hello, err := c.Hello(nil)
		if failed("Hello", hello, err, c.Wiped()) {
			return
		}
		welcome, err := sv.ReadHello(nil, hello)
		if failed("ReadHello", welcome, err, sv.Wiped()) {
			return
		}
		initiate, err := c.ReadWelcome(nil, welcome)
		if failed("ReadWelcome", initiate, err, c.Wiped()) {
			return
		}
		req, err := sv.ReadInitiate(initiate)
		if failed("ReadInitiate", nil, err, sv.Wiped()) {
			return
		}
		if req.ClientKey != cliKP.Public {
			t.Fatalf("server authenticated %s, not the client's key", req.ClientKey)
		}
		ready, ssess, err := sv.Answer(nil, handshake.Result{Status: handshake.StatusOK})
		if failed("Answer", ready, err, sv.Wiped()) {
			return
		}
		csess, err := c.ReadReady(ready)
		if failed("ReadReady", nil, err, c.Wiped()) {
			return
		}
		if !c.Wiped() || !sv.Wiped() {
			t.Fatal("handshake secrets survived READY")
		}
		defer csess.Close()
		defer ssess.Close()
		// Messages both ways: with untampered nonces every one opens; with tampered
		// nonces a message opens only if its nonce is above the last one accepted.
		for i := 0; i < 3; i++ {
			for _, dir := range []struct{ from, to *handshake.Session }{{csess, ssess}, {ssess, csess}} {
				payload := []byte{byte(i), 1, 2}
				body, err := dir.from.Seal(nil, byte(i)&handshake.MessageMore, payload)
				if err != nil {
					if !errors.Is(err, handshake.ErrNonce) {
						t.Fatalf("Seal: %v", err)
					}
					return
				}
				flags, got, err := dir.to.OpenMessage(body)
				if err != nil {
					if ccfg.Tamper == nil && scfg.Tamper == nil {
						t.Fatalf("untampered message refused: %v", err)
					}
					if !errors.Is(err, handshake.ErrNonce) {
						t.Fatalf("a message refused for another reason than its nonce: %v", err)
					}
					return
				}
				if !bytes.Equal(got, payload) || flags != byte(i)&handshake.MessageMore {
					t.Fatalf("opened %q flags %x", got, flags)
				}
			}
		}
	})
}
