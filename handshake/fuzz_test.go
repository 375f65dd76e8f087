package handshake

import (
	"bytes"
	"testing"
)

// Each target asserts: no panic; the zero value on error; and, on success, that
// re-marshalling gives the input back (no malleability). Seeds come from the golden
// transcript in testdata/ (loadGolden fails the test if it holds nothing).

func seed(f *testing.F, names ...string) {
	g := loadGolden(f)
	for _, n := range names {
		b, ok := g[n]
		if !ok {
			f.Fatalf("no seed %q in %s", n, goldenPath)
		}
		f.Add(b)
	}
}

func FuzzHello(f *testing.F) {
	seed(f, "hello", "welcome")
	f.Fuzz(func(t *testing.T, b []byte) {
		var m helloCmd
		if err := m.unmarshal(b); err != nil {
			if m != (helloCmd{}) {
				t.Fatal("non-zero value on error")
			}
			return
		}
		if !bytes.Equal(m.marshal(nil), b) {
			t.Fatal("re-marshal differs")
		}
	})
}

func FuzzWelcome(f *testing.F) {
	seed(f, "welcome", "hello")
	f.Fuzz(func(t *testing.T, b []byte) {
		var m welcomeCmd
		if err := m.unmarshal(b); err != nil {
			if m != (welcomeCmd{}) {
				t.Fatal("non-zero value on error")
			}
			return
		}
		if !bytes.Equal(m.marshal(nil), b) {
			t.Fatal("re-marshal differs")
		}
	})
}

func FuzzInitiate(f *testing.F) {
	seed(f, "initiate", "ready")
	f.Fuzz(func(t *testing.T, b []byte) {
		var m initiateCmd
		if err := m.unmarshal(b, initiateMinSize+DefaultMaxMetadata); err != nil {
			if m.box != nil || m.nonce != 0 || m.cookie != [cookieSize]byte{} {
				t.Fatal("non-zero value on error")
			}
			return
		}
		if !bytes.Equal(m.marshal(nil), b) {
			t.Fatal("re-marshal differs")
		}
	})
}

func FuzzReady(f *testing.F) {
	seed(f, "ready", "initiate")
	f.Fuzz(func(t *testing.T, b []byte) {
		var m readyCmd
		if err := m.unmarshal(b, readyMinSize+DefaultMaxMetadata); err != nil {
			if m.box != nil || m.nonce != 0 {
				t.Fatal("non-zero value on error")
			}
			return
		}
		if !bytes.Equal(m.marshal(nil), b) {
			t.Fatal("re-marshal differs")
		}
	})
}

func FuzzError(f *testing.F) {
	f.Add([]byte("\x05ERROR\x03400"))
	f.Add([]byte("\x05ERROR\x04400"))
	seed(f, "ready")
	f.Fuzz(func(t *testing.T, b []byte) {
		var m errorCmd
		if err := m.unmarshal(b); err != nil {
			if m != (errorCmd{}) {
				t.Fatal("non-zero value on error")
			}
			return
		}
		// Trailing bytes are tolerated (as libzmq); the command itself must round-trip.
		out := m.marshal(nil)
		if !bytes.Equal(out, b[:len(out)]) {
			t.Fatal("re-marshal differs")
		}
		readError(b) // must not panic
	})
}

// FuzzMessageOpen feeds arbitrary bodies to a live session: nothing but valid MESSAGEs
// opens, and a failure leaves zero outputs.
func FuzzMessageOpen(f *testing.F) {
	seed(f, "message-c2s-1", "message-c2s-2", "message-s2c-1")
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := newConfigs(t)
		cfg.client.Rand = newDetRand("client")
		cfg.server.Rand = newDetRand("server")
		tr := run(t, cfg, func(*Request) Result { return Result{Status: StatusOK, UserID: "alice"} })
		// The command's fields round-trip whenever it parses (no malleability).
		var m messageCmd
		if m.unmarshal(b) == nil && !bytes.Equal(m.marshal(nil), b) {
			t.Fatal("MESSAGE re-marshal differs")
		}
		in := bytes.Clone(b)
		flags, payload, err := tr.server.OpenMessage(in)
		if err != nil {
			if flags != 0 || payload != nil {
				t.Fatal("non-zero outputs on error")
			}
			return
		}
		// Only the golden client MESSAGEs can open here (same keys, same randomness).
		g := loadGolden(t)
		if !bytes.Equal(b, g["message-c2s-1"]) && !bytes.Equal(b, g["message-c2s-2"]) {
			t.Fatalf("a forged MESSAGE opened: %x", b)
		}
	})
}

func FuzzMetadata(f *testing.F) {
	m, _ := Metadata{{PropSocketType, []byte("DEALER")}, {PropIdentity, []byte("IDENT")}}.Append(nil)
	f.Add(m)
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 'X', 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseMetadata(b)
		if err != nil {
			if md != nil {
				t.Fatal("non-nil metadata on error")
			}
			return
		}
		out, err := md.Append(nil)
		if err != nil {
			// Only a zero-length name (accepted as libzmq does) cannot be re-marshalled.
			for _, p := range md {
				if p.Name == "" {
					return
				}
			}
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("re-marshal differs")
		}
	})
}
