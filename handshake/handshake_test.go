package handshake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
)

func wantCode(t *testing.T, err error, code int, sentinel error) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ProtocolError", err)
	}
	if pe.Code != code {
		t.Fatalf("code 0x%08x, want 0x%08x (%v)", pe.Code, code, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not wrap %v", err, sentinel)
	}
}

func TestHandshakeAndMessages(t *testing.T) {
	cfg := newConfigs(t)
	tr := run(t, cfg, nil)
	// Sizes as libzmq sends them (protocol-anchors §1.4-§1.7).
	if len(tr.hello) != 200 || len(tr.welcome) != 168 {
		t.Fatalf("HELLO %d, WELCOME %d bytes", len(tr.hello), len(tr.welcome))
	}
	if want := 257 + cfg.client.Metadata.Size(); len(tr.initiate) != want {
		t.Fatalf("INITIATE %d bytes, want %d", len(tr.initiate), want)
	}
	if want := 30 + cfg.server.Metadata.Size(); len(tr.ready) != want {
		t.Fatalf("READY %d bytes, want %d", len(tr.ready), want)
	}
	// Short nonces: HELLO 1, INITIATE 2, READY 1.
	if n := binary.BigEndian.Uint64(tr.hello[112:120]); n != 1 {
		t.Fatalf("HELLO nonce %d", n)
	}
	if n := binary.BigEndian.Uint64(tr.initiate[105:113]); n != 2 {
		t.Fatalf("INITIATE nonce %d", n)
	}
	if n := binary.BigEndian.Uint64(tr.ready[6:14]); n != 1 {
		t.Fatalf("READY nonce %d", n)
	}
	if tr.req.ClientKey != cfg.client.KeyPair.Public || string(tr.req.Identity) != "client" ||
		tr.req.Domain != "global" || tr.req.Mechanism != "CURVE" {
		t.Fatalf("request %+v", tr.req)
	}
	if v, _ := tr.server.PeerMetadata().Get(PropSocketType); string(v) != "DEALER" {
		t.Fatalf("server sees Socket-Type %q", v)
	}
	if v, _ := tr.server.PeerMetadata().Get(PropUserID); string(v) != cfg.client.KeyPair.Public.String() {
		t.Fatalf("server sees User-Id %q", v)
	}
	if v, _ := tr.client.PeerMetadata().Get(PropSocketType); string(v) != "ROUTER" {
		t.Fatalf("client sees Socket-Type %q", v)
	}
	if tr.server.PeerKey() != cfg.client.KeyPair.Public || tr.client.PeerKey() != cfg.server.KeyPair.Public {
		t.Fatal("peer keys")
	}
	// The handshakes hold no secret any more; the sessions do until Close.
	if !tr.c.Wiped() || !tr.s.Wiped() {
		t.Fatal("handshake secrets survived READY")
	}
	if tr.client.Wiped() || tr.server.Wiped() {
		t.Fatal("session key missing")
	}

	// Client MESSAGEs start at nonce 3, server MESSAGEs at 2 (protocol-anchors §1.11).
	parts := []struct {
		flags   byte
		payload []byte
	}{{MessageMore, []byte("part one")}, {MessageMore, nil}, {0, bytes.Repeat([]byte("x"), 2048)}, {MessageCommand, []byte("\x04PING\x00\x00")}}
	for i, p := range parts {
		body, err := tr.client.Seal(nil, p.flags, p.payload)
		if err != nil {
			t.Fatal(err)
		}
		if n := binary.BigEndian.Uint64(body[8:16]); n != uint64(3+i) {
			t.Fatalf("client MESSAGE %d nonce %d", i, n)
		}
		flags, payload, err := tr.server.OpenMessage(body)
		if err != nil || flags != p.flags || !bytes.Equal(payload, p.payload) {
			t.Fatalf("part %d: flags %x payload %q err %v", i, flags, payload, err)
		}
	}
	body, _ := tr.server.Seal(nil, 0, []byte("reply"))
	if n := binary.BigEndian.Uint64(body[8:16]); n != 2 {
		t.Fatalf("server MESSAGE nonce %d", n)
	}
	if _, p, err := tr.client.OpenMessage(body); err != nil || string(p) != "reply" {
		t.Fatal(p, err)
	}
	tr.client.Close()
	tr.server.Close()
	if !tr.client.Wiped() || !tr.server.Wiped() {
		t.Fatal("Close left the session key")
	}
	if _, err := tr.client.Seal(nil, 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Close: %v", err)
	}
}

func TestHelloChecks(t *testing.T) {
	cfg := newConfigs(t)
	valid := func() []byte {
		c, _ := NewClient(cfg.client)
		h, _ := c.Hello(nil)
		return h
	}
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		code   int
		err    error
	}{
		{"199 bytes", func(b []byte) []byte { return b[:199] }, CodeMalformedHello, ErrMalformed},
		{"201 bytes", func(b []byte) []byte { return append(b, 0) }, CodeMalformedHello, ErrMalformed},
		{"6 bytes", func(b []byte) []byte { return b[:6] }, CodeMalformedHello, ErrMalformed}, // test_curve_security_invalid_hello_wrong_length
		{"name", func(b []byte) []byte { b[1] = 'J'; return b }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"version 2.0", func(b []byte) []byte { b[6] = 2; return b }, CodeMalformedHello, ErrMalformed},
		{"version 1.1", func(b []byte) []byte { b[7] = 1; return b }, CodeMalformedHello, ErrMalformed},
		// Stricter than libzmq (which ignores the padding): every implementation sends zeros.
		{"padding", func(b []byte) []byte { b[8+71] = 0xAA; return b }, CodeMalformedHello, ErrMalformed},
		{"box", func(b []byte) []byte { b[150] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"transient key", func(b []byte) []byte { b[80] ^= 1; return b }, CodeCryptographic, nil},
		{"nonce", func(b []byte) []byte { b[119] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"low-order transient", func(b []byte) []byte { clear(b[80:112]); return b }, CodeCryptographic, ErrBadKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := NewServer(cfg.server)
			out, err := s.ReadHello(nil, c.mutate(valid()))
			wantCode(t, err, c.code, c.err)
			if out != nil || !s.Wiped() {
				t.Fatal("failure left output or secrets")
			}
			// The failure is sticky.
			if _, err2 := s.ReadHello(nil, valid()); err2 != err {
				t.Fatalf("second call: %v", err2)
			}
		})
	}
	// A client with the wrong server key: the server cannot open HELLO (libzmq#2227).
	other, _ := key.GenerateKeyPair(nil)
	wrong := *cfg.client
	wrong.ServerKey = other.Public
	c, _ := NewClient(&wrong)
	h, _ := c.Hello(nil)
	s, _ := NewServer(cfg.server)
	_, err := s.ReadHello(nil, h)
	wantCode(t, err, CodeCryptographic, ErrCrypto)
	// Nonces 0 and 2^64-1 are accepted (libzmq's tests send 0).
	for _, n := range []uint64{0, math.MaxUint64} {
		cc := *cfg.client
		cc.Tamper = func(stage string, b []byte) []byte {
			if stage == "hello-nonce" {
				return binary.BigEndian.AppendUint64(nil, n)
			}
			return b
		}
		if _, err := runErr(configs{&cc, cfg.server}, nil); err != nil && n == 0 {
			t.Fatalf("HELLO nonce %d: %v", n, err)
		}
	}
}

func TestWelcomeChecks(t *testing.T) {
	cfg := newConfigs(t)
	welcome := func() (*Client, []byte) {
		c, _ := NewClient(cfg.client)
		h, _ := c.Hello(nil)
		s, _ := NewServer(cfg.server)
		w, err := s.ReadHello(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		return c, w
	}
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
		code   int
		err    error
	}{
		{"167 bytes", func(b []byte) []byte { return b[:167] }, CodeCryptographic, ErrMalformed},
		{"169 bytes", func(b []byte) []byte { return append(b, 0) }, CodeCryptographic, ErrMalformed},
		{"name", func(b []byte) []byte { b[1] = 'V'; return b }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"box", func(b []byte) []byte { b[100] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"nonce", func(b []byte) []byte { b[10] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"HELLO instead", func([]byte) []byte { c, _ := NewClient(cfg.client); h, _ := c.Hello(nil); return h }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"READY instead", func([]byte) []byte { return append([]byte(nameReady), make([]byte, 30)...) }, CodeUnexpectedCommand, ErrUnexpectedCommand},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, w := welcome()
			out, err := cl.ReadWelcome(nil, c.mutate(w))
			wantCode(t, err, c.code, c.err)
			if out != nil || !cl.Wiped() {
				t.Fatal("failure left output or secrets")
			}
		})
	}
	// A WELCOME made for another connection (another transient key) does not open.
	_, w := welcome()
	other, _ := welcome()
	_, err := other.ReadWelcome(nil, w)
	if err == nil {
		// other's own WELCOME was consumed by nobody; w belongs to the first client.
		t.Fatal("foreign WELCOME accepted")
	}
	wantCode(t, err, CodeCryptographic, ErrCrypto)
}

// initiateWith runs a handshake up to INITIATE with a client whose Tamper is tamper, and
// returns the server's result of ReadInitiate.
func initiateWith(t *testing.T, cfg configs, tamper func(string, []byte) []byte) (*Server, *Request, error) {
	t.Helper()
	cc := *cfg.client
	cc.Tamper = tamper
	c, err := NewClient(&cc)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewServer(cfg.server)
	h, _ := c.Hello(nil)
	w, err := s.ReadHello(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.ReadWelcome(nil, w)
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.ReadInitiate(in)
	return s, req, err
}

func stage(name string, f func([]byte) []byte) func(string, []byte) []byte {
	return func(s string, b []byte) []byte {
		if s == name {
			return f(bytes.Clone(b))
		}
		return b
	}
}

func TestInitiateChecks(t *testing.T) {
	cfg := newConfigs(t)
	appendMeta := func(extra []byte) func(string, []byte) []byte {
		return stage("initiate-plain", func(b []byte) []byte { return append(b, extra...) })
	}
	cases := []struct {
		name   string
		tamper func(string, []byte) []byte
		code   int
		err    error
	}{
		{"vouch C' mismatch", stage("vouch-plain", func(b []byte) []byte { b[0] ^= 1; return b }), CodeKeyExchange, ErrCrypto},
		// libzmq compares only C'; we also compare S (protocol-anchors §1.6, item 4).
		{"vouch S mismatch", stage("vouch-plain", func(b []byte) []byte { b[40] ^= 1; return b }), CodeKeyExchange, ErrCrypto},
		{"metadata name overrun", appendMeta([]byte{9, 'S', 'o'}), CodeInvalidMetadata, ErrMalformed},
		{"metadata value overrun", appendMeta([]byte{1, 'X', 0, 0, 0, 9, 'v'}), CodeInvalidMetadata, ErrMalformed},
		{"one stray byte", appendMeta([]byte{1}), CodeInvalidMetadata, ErrMalformed},
		{"value length above 2^31-1", appendMeta([]byte{1, 'X', 0x80, 0, 0, 0}), CodeInvalidMetadata, ErrMalformed},
		{"reserved User-Id", appendMeta([]byte{7, 'U', 's', 'e', 'r', '-', 'I', 'd', 0, 0, 0, 1, 'm'}), CodeInvalidMetadata, ErrMalformed},
		{"client key all zeros", stage("initiate-plain", func(b []byte) []byte { clear(b[:32]); return b }), CodeCryptographic, ErrBadKey},
		{"box truncated below C and vouch", stage("initiate-plain", func(b []byte) []byte { return b[:100] }), CodeMalformedInitiate, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, req, err := initiateWith(t, cfg, c.tamper)
			wantCode(t, err, c.code, c.err)
			if req != nil || !s.Wiped() {
				t.Fatal("failure left a request or secrets")
			}
		})
	}
	// A zero-length property name is accepted, as libzmq accepts it; so is no Socket-Type.
	if _, _, err := initiateWith(t, cfg, appendMeta([]byte{0, 0, 0, 0, 1, 'v'})); err != nil {
		t.Fatalf("zero-length name: %v", err)
	}
	bare := *cfg.client
	bare.Metadata = nil
	tr := run(t, configs{&bare, cfg.server}, nil)
	if len(tr.initiate) != 257 {
		t.Fatalf("INITIATE without metadata is %d bytes, want 257", len(tr.initiate))
	}

	// Raw mutations of the command.
	fresh := func() (*Server, []byte) {
		c, _ := NewClient(cfg.client)
		s, _ := NewServer(cfg.server)
		h, _ := c.Hello(nil)
		w, _ := s.ReadHello(nil, h)
		in, _ := c.ReadWelcome(nil, w)
		return s, in
	}
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
		code   int
		err    error
	}{
		{"256 bytes", func(b []byte) []byte { return b[:256] }, CodeMalformedInitiate, ErrMalformed},
		{"9 bytes", func(b []byte) []byte { return b[:9] }, CodeMalformedInitiate, ErrMalformed},
		{"name", func(b []byte) []byte { b[2] = 'X'; return b }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"cookie", func(b []byte) []byte { b[50] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"cookie nonce", func(b []byte) []byte { b[10] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"box", func(b []byte) []byte { b[200] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"nonce", func(b []byte) []byte { b[112] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"ERROR from the client", func([]byte) []byte { return (&errorCmd{"400"}).marshal(nil) }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"HELLO again", func([]byte) []byte { c, _ := NewClient(cfg.client); h, _ := c.Hello(nil); return h }, CodeUnexpectedCommand, ErrUnexpectedCommand},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, in := fresh()
			_, err := s.ReadInitiate(c.mutate(in))
			wantCode(t, err, c.code, c.err)
			if !s.Wiped() {
				t.Fatal("secrets survived")
			}
		})
	}
	// A cookie from another connection: client A's INITIATE presented to server B.
	_, inA := fresh()
	sB, _ := fresh()
	_, err := sB.ReadInitiate(inA)
	wantCode(t, err, CodeCryptographic, ErrCrypto)

	// Metadata beyond the cap is refused before decryption; raising the cap admits it.
	big := *cfg.client
	big.Metadata = Metadata{{"X-Big", make([]byte, DefaultMaxMetadata)}}
	_, _, err = initiateWith(t, configs{&big, cfg.server}, nil)
	wantCode(t, err, CodeMalformedInitiate, ErrMalformed)
	roomy := *cfg.server
	roomy.MaxMetadata = 2 * DefaultMaxMetadata
	if _, _, err := initiateWith(t, configs{&big, &roomy}, nil); err != nil {
		t.Fatalf("raised cap: %v", err)
	}
	for _, n := range []int{0, 255, 256, 257, 64 << 10} { // CVE-2019-13132's sizes
		m := *cfg.client
		m.Metadata = Metadata{{"X-Pad", make([]byte, n)}}
		r := *cfg.server
		r.MaxMetadata = 128 << 10
		if _, _, err := initiateWith(t, configs{&m, &r}, nil); err != nil {
			t.Fatalf("metadata %d: %v", n, err)
		}
	}
}

func TestReadyChecks(t *testing.T) {
	cfg := newConfigs(t)
	toReady := func(scfg *Config) (*Client, []byte) {
		c, _ := NewClient(cfg.client)
		s, _ := NewServer(scfg)
		h, _ := c.Hello(nil)
		w, _ := s.ReadHello(nil, h)
		in, _ := c.ReadWelcome(nil, w)
		if _, err := s.ReadInitiate(in); err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Answer(nil, Result{Status: StatusOK})
		if err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
		code   int
		err    error
	}{
		{"29 bytes", func(b []byte) []byte { return b[:29] }, CodeMalformedReady, ErrMalformed},
		{"box", func(b []byte) []byte { b[20] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"nonce", func(b []byte) []byte { b[13] ^= 1; return b }, CodeCryptographic, ErrCrypto},
		{"name", func(b []byte) []byte { b[1] = 'S'; return b }, CodeUnexpectedCommand, ErrUnexpectedCommand},
		{"WELCOME again", func(b []byte) []byte { return append([]byte(nameWelcome), make([]byte, 160)...) }, CodeUnexpectedCommand, ErrUnexpectedCommand},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, r := toReady(cfg.server)
			_, err := cl.ReadReady(c.mutate(r))
			wantCode(t, err, c.code, c.err)
			if !cl.Wiped() {
				t.Fatal("secrets survived")
			}
		})
	}
	bad := *cfg.server
	bad.Tamper = stage("ready-plain", func(b []byte) []byte { return append(b, 3) })
	cl, r := toReady(&bad)
	_, err := cl.ReadReady(r)
	wantCode(t, err, CodeInvalidMetadata, ErrMalformed)
}

func TestErrorCommand(t *testing.T) {
	cfg := newConfigs(t)
	// The server's replies: exact ERROR bytes for 400 and 500, nothing for 300.
	for _, c := range []struct {
		status int
		wire   []byte
	}{
		{StatusDenied, []byte("\x05ERROR\x03400")},
		{StatusInternalError, []byte("\x05ERROR\x03500")},
		{StatusTemporary, nil},
		{42, []byte("\x05ERROR\x03500")}, // unknown status: internal error
	} {
		tr, err := runErr(cfg, func(*Request) Result { return Result{Status: c.status, StatusText: "nope"} })
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAuth) {
			t.Fatalf("status %d: %v", c.status, err)
		}
		if !bytes.Equal(tr.ready, c.wire) {
			t.Fatalf("status %d: reply %q, want %q", c.status, tr.ready, c.wire)
		}
		if c.wire != nil {
			// The client names the failure.
			var cae *AuthError
			if !errors.As(err.(joinErr).client, &cae) || cae.Status != max(c.status, 0) && c.status != 42 {
				t.Fatalf("client error %v", err.(joinErr).client)
			}
		}
		if !tr.s.Wiped() || !tr.c.Wiped() && c.wire != nil {
			t.Fatal("secrets survived a refusal")
		}
	}
	// ERROR in place of WELCOME, with each reason; a malformed ERROR is a protocol error.
	for _, c := range []struct {
		body   string
		status int
		reason string
		code   int
	}{
		{"\x05ERROR\x03300", 300, "", 0},
		{"\x05ERROR\x03400", 400, "", 0},
		{"\x05ERROR\x03500", 500, "", 0},
		{"\x05ERROR\x04nope", 0, "nope", 0},
		{"\x05ERROR\x03400trailing", 400, "", 0}, // libzmq tolerates trailing bytes
		{"\x05ERROR\x00", 0, "", 0},
		{"\x05ERROR\x04400", 0, "", CodeMalformedError}, // length byte beyond the command
		{"\x05ERROR", 0, "", CodeMalformedError},        // 6 bytes
	} {
		c2, _ := NewClient(cfg.client)
		c2.Hello(nil)
		_, err := c2.ReadWelcome(nil, []byte(c.body))
		if c.code != 0 {
			wantCode(t, err, c.code, ErrMalformed)
			continue
		}
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Status != c.status || (c.reason != "" && ae.Reason != c.reason) {
			t.Fatalf("%q: %v", c.body, err)
		}
		if !c2.Wiped() {
			t.Fatal("secrets survived ERROR")
		}
	}
	// ERROR in place of READY.
	c3, _ := NewClient(cfg.client)
	s3, _ := NewServer(cfg.server)
	h, _ := c3.Hello(nil)
	w, _ := s3.ReadHello(nil, h)
	c3.ReadWelcome(nil, w)
	if _, err := c3.ReadReady([]byte("\x05ERROR\x03400")); !errors.Is(err, ErrAuth) || !c3.Wiped() {
		t.Fatalf("ERROR for READY: %v", err)
	}
	// ERROR once connected is not a MESSAGE.
	tr := run(t, cfg, nil)
	_, _, err := tr.client.OpenMessage([]byte("\x05ERROR\x03400"))
	wantCode(t, err, CodeUnexpectedCommand, ErrUnexpectedCommand)
}

func TestMessageChecks(t *testing.T) {
	cfg := newConfigs(t)
	fresh := func() *transcript { return run(t, cfg, nil) }
	seal := func(s *Session, flags byte, p string) []byte {
		b, err := s.Seal(nil, flags, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("short", func(t *testing.T) {
		tr := fresh()
		_, _, err := tr.server.OpenMessage(seal(tr.client, 0, "")[:32])
		wantCode(t, err, CodeMalformedMessage, ErrMalformed)
	})
	t.Run("prefix", func(t *testing.T) {
		tr := fresh()
		b := seal(tr.client, 0, "x")
		b[3] = 'X'
		_, _, err := tr.server.OpenMessage(b)
		wantCode(t, err, CodeUnexpectedCommand, ErrUnexpectedCommand)
	})
	t.Run("replay", func(t *testing.T) {
		tr := fresh()
		b := seal(tr.client, 0, "x")
		replay := bytes.Clone(b)
		if _, _, err := tr.server.OpenMessage(b); err != nil {
			t.Fatal(err)
		}
		_, _, err := tr.server.OpenMessage(replay)
		wantCode(t, err, CodeInvalidSequence, ErrNonce)
		// Dead from now on: a valid next message fails with the same error.
		if _, _, err2 := tr.server.OpenMessage(seal(tr.client, 0, "y")); err2 != err {
			t.Fatalf("after failure: %v", err2)
		}
		if _, err := tr.server.Seal(nil, 0, nil); err != err {
			t.Fatal("send side still alive")
		}
	})
	t.Run("decrease", func(t *testing.T) {
		tr := fresh()
		first := seal(tr.client, 0, "1")
		second := seal(tr.client, 0, "2")
		if _, _, err := tr.server.OpenMessage(second); err != nil {
			t.Fatal(err)
		}
		_, _, err := tr.server.OpenMessage(first)
		wantCode(t, err, CodeInvalidSequence, ErrNonce)
	})
	t.Run("gap", func(t *testing.T) {
		tr := fresh()
		seal(tr.client, 0, "lost")
		seal(tr.client, 0, "lost too")
		if _, p, err := tr.server.OpenMessage(seal(tr.client, 0, "arrives")); err != nil || string(p) != "arrives" {
			t.Fatal(err)
		}
	})
	t.Run("nonce above 2^32", func(t *testing.T) {
		tr := fresh()
		tr.client.sendNonce = 1 << 33
		if _, _, err := tr.server.OpenMessage(seal(tr.client, 0, "x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad MAC", func(t *testing.T) {
		tr := fresh()
		b := seal(tr.client, 0, "hello")
		b[len(b)-1] ^= 1
		_, _, err := tr.server.OpenMessage(b)
		wantCode(t, err, CodeCryptographic, ErrCrypto)
	})
	t.Run("failed open does not advance the nonce", func(t *testing.T) {
		tr := fresh()
		b := seal(tr.client, 0, "hello")
		bad := bytes.Clone(b)
		bad[20] ^= 1
		if _, _, err := tr.server.OpenMessage(bad); err == nil {
			t.Fatal("bad MAC accepted")
		}
		if tr.server.recvNonce != 2 {
			t.Fatalf("nonce advanced to %d by a failed open", tr.server.recvNonce)
		}
	})
	t.Run("inner reserved bits are ignored", func(t *testing.T) {
		// Seal by hand with inner flags 0x81, as an odd peer could send (libzmq masks them).
		tr := fresh()
		body := make([]byte, MessageOverhead+1)
		copy(body[:8], nameMessage)
		binary.BigEndian.PutUint64(body[8:16], 3)
		body[32], body[33] = 0x81, 'x'
		n := shortNonce(&tr.client.sendPrefix, 3)
		sealInPlace(body[16:], &n, tr.client.key)
		flags, p, err := tr.server.OpenMessage(body)
		if err != nil || flags != MessageMore || string(p) != "x" {
			t.Fatalf("flags %x %q %v", flags, p, err)
		}
	})
	t.Run("send counter does not wrap", func(t *testing.T) {
		tr := fresh()
		tr.client.sendNonce = math.MaxUint64 - 1
		last := seal(tr.client, 0, "last")
		if n := binary.BigEndian.Uint64(last[8:16]); n != math.MaxUint64 {
			t.Fatalf("nonce %d", n)
		}
		if _, err := tr.client.Seal(nil, 0, []byte("one more")); !errors.Is(err, ErrNonce) {
			t.Fatalf("wrapped: %v", err)
		}
		if _, _, err := tr.server.OpenMessage(last); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("direction", func(t *testing.T) {
		// A client's own MESSAGE reflected back to it does not open: the prefixes differ.
		tr := fresh()
		_, _, err := tr.client.OpenMessage(seal(tr.client, 0, "reflected"))
		wantCode(t, err, CodeCryptographic, ErrCrypto)
	})
}

func TestSequenceErrors(t *testing.T) {
	cfg := newConfigs(t)
	c, _ := NewClient(cfg.client)
	if _, err := c.ReadWelcome(nil, nil); !errors.Is(err, ErrState) || !c.Wiped() {
		t.Fatalf("ReadWelcome before Hello: %v", err)
	}
	s, _ := NewServer(cfg.server)
	if _, _, err := s.Answer(nil, Result{Status: StatusOK}); !errors.Is(err, ErrState) {
		t.Fatalf("Answer before INITIATE: %v", err)
	}
	// Clear mid-handshake (a deadline or EOF) wipes and fails the handshake.
	c2, _ := NewClient(cfg.client)
	s2, _ := NewServer(cfg.server)
	h, _ := c2.Hello(nil)
	w, _ := s2.ReadHello(nil, h)
	if c2.Wiped() || s2.Wiped() {
		t.Fatal("nothing to wipe mid-handshake?")
	}
	c2.Clear()
	s2.Clear()
	if !c2.Wiped() || !s2.Wiped() {
		t.Fatal("Clear left secrets")
	}
	if _, err := c2.ReadWelcome(nil, w); !errors.Is(err, ErrState) {
		t.Fatalf("after Clear: %v", err)
	}
	// Bad configurations.
	for name, cc := range map[string]*Config{
		"nil":             nil,
		"no keys":         {},
		"zero server key": {KeyPair: cfg.client.KeyPair},
		"User-Id":         {KeyPair: cfg.client.KeyPair, ServerKey: cfg.server.KeyPair.Public, Metadata: Metadata{{PropUserID, []byte("me")}}},
	} {
		if _, err := NewClient(cc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
