package zap

import (
	"bytes"
	"context"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
)

// FuzzZAPRequest feeds arbitrary ZAP request frames (split at 0xFF bytes) to the wire
// server's parser: it must not panic; it answers nothing, or an RFC 27 reply of six frames
// that echoes the request id with one of the four statuses; and it admits nothing but the
// one allowed key.
func FuzzZAPRequest(f *testing.F) {
	allowed, _ := key.GenerateKeyPair(nil)
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, []byte{0xFF}) }
	f.Add(join([]byte("1.0"), []byte("1"), []byte("*"), []byte("127.0.0.1"), nil, []byte("CURVE"), allowed.Public[:]))
	f.Add(join([]byte("1.0"), []byte("1"), []byte(""), []byte("::1"), []byte("IDENT"), []byte("CURVE"), make([]byte, 32)))
	f.Add(join([]byte("2.0"), []byte("7")))
	f.Add([]byte{})
	a := New(Config{RescanInterval: -1})
	f.Cleanup(func() { a.Close() })
	if err := a.ConfigureCurveCallback("*", func(_ context.Context, _ string, k key.PublicKey) (bool, error) { return k == allowed.Public, nil }); err != nil {
		f.Fatal(err)
	}
	w := &WireServer{a: a}
	f.Fuzz(func(t *testing.T, in []byte) {
		req := bytes.Split(in, []byte{0xFF})
		reply := w.answer(req)
		if reply == nil {
			if len(req) >= 2 {
				t.Fatalf("no reply to a request with an id: %q", req)
			}
			return
		}
		if len(reply) != 6 || string(reply[0]) != "1.0" || !bytes.Equal(reply[1], req[1]) {
			t.Fatalf("malformed reply %q", reply)
		}
		switch string(reply[2]) {
		case "200":
			ok := len(req) == 7 && string(req[0]) == "1.0" && string(req[5]) == "CURVE" && bytes.Equal(req[6], allowed.Public[:])
			if !ok {
				t.Fatalf("admitted %q", req)
			}
		case "300", "400", "500":
			if len(reply[4]) != 0 || len(reply[5]) != 0 {
				t.Fatal("a refusal carries a user id or metadata")
			}
		default:
			t.Fatalf("status %q", reply[2])
		}
	})
}
