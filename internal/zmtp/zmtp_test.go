package zmtp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"testing"
	"testing/iotest"
)

// libzmqGreeting is the CURVE greeting libzmq 4.3.4 sends (protocol-anchors §1.1): padding
// 00..06 for routing id "IDENT", version 3.1, as-server 0 even on a server.
func libzmqGreeting(t testing.TB) []byte {
	b, err := hex.DecodeString("ff00000000000000067f0301" + hex.EncodeToString([]byte("CURVE")) + "000000000000000000000000000000" + "00" + "00000000000000000000000000000000000000000000000000000000000000")
	if err != nil || len(b) != GreetingSize {
		t.Fatalf("bad test greeting: %d bytes, %v", len(b), err)
	}
	return b
}

func TestGreeting(t *testing.T) {
	ours := AppendGreeting(nil, "CURVE", 0, true)
	if len(ours) != 64 || ours[0] != 0xFF || ours[9] != 0x7F || ours[10] != 3 || ours[11] != 0 || ours[32] != 1 {
		t.Fatalf("our greeting %x", ours)
	}
	g, err := ParseGreeting(ours, "CURVE")
	if err != nil || !g.AsServer || g.Is31() {
		t.Fatal(g, err)
	}
	lz := libzmqGreeting(t)
	g, err = ReadGreeting(iotest.OneByteReader(bytes.NewReader(lz)), "CURVE")
	if err != nil || g.Major != 3 || g.Minor != 1 || !g.Is31() || g.AsServer {
		t.Fatal(g, err)
	}
	// Accepted: any padding, as-server 0 or 1 on either side, minor 0/1/2, major 4.
	for name, mutate := range map[string]func([]byte){
		"padding":   func(b []byte) { copy(b[1:9], "junkjunk") },
		"as-server": func(b []byte) { b[32] = 1 },
		"minor 2":   func(b []byte) { b[11] = 2 },
		"major 4":   func(b []byte) { b[10] = 4 },
		"filler":    func(b []byte) { b[63] = 0xAA },
		"reserved":  func(b []byte) { b[9] = 0xFF },
	} {
		b := libzmqGreeting(t)
		mutate(b)
		if _, err := ReadGreeting(bytes.NewReader(b), "CURVE"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Refused: ZMTP 1.0 (no 0xFF, or bit 0 of byte 9 clear), ZMTP 2.0 (major 1), and a
	// mechanism mismatch (NULL, PLAIN, "CURVE " with a trailing space).
	for name, c := range map[string]struct {
		mutate func([]byte) []byte
		err    error
	}{
		"ZMTP 1.0 identity frame": {func(b []byte) []byte { return []byte{0x01, 0x00} }, ErrVersion},
		"HTTP":                    {func(b []byte) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, ErrVersion},
		"bit 0 of byte 9":         {func(b []byte) []byte { b[9] = 0x7E; return b }, ErrVersion},
		"major 0":                 {func(b []byte) []byte { b[10] = 0; return b }, ErrVersion},
		"major 1 (ZMTP 2.0)":      {func(b []byte) []byte { b[10] = 1; return b }, ErrVersion},
		"NULL":                    {func(b []byte) []byte { copy(b[12:32], "NULL\x00"); return b }, ErrMechanism},
		"PLAIN":                   {func(b []byte) []byte { copy(b[12:32], "PLAIN"); return b }, ErrMechanism},
		"CURVE+space":             {func(b []byte) []byte { b[17] = ' '; return b }, ErrMechanism},
	} {
		in := c.mutate(libzmqGreeting(t))
		// A short ZMTP 1.0 peer is refused from what it sent, without waiting for more.
		_, err := ReadGreeting(bytes.NewReader(in), "CURVE")
		if !errors.Is(err, c.err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ReadGreeting(bytes.NewReader(libzmqGreeting(t)[:40]), "CURVE"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestFrameHeader(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 65536, 1 << 30} {
		h := AppendHeader(nil, FlagMore, n)
		if len(h) != HeaderSize(n) {
			t.Fatalf("%d: header %d bytes", n, len(h))
		}
		var p [9]byte
		if PutHeader(p[:], FlagMore, n) != len(h) || !bytes.Equal(p[:len(h)], h) {
			t.Fatalf("%d: PutHeader differs", n)
		}
		flags, size, hl, err := ParseHeader(h, math.MaxUint64)
		if err != nil || size != uint64(n) || hl != len(h) || flags&FlagMore == 0 || (flags&FlagLong != 0) != (n > 255) {
			t.Fatalf("%d: %x %d %d %v", n, flags, size, hl, err)
		}
		for i := 0; i < len(h); i++ {
			if _, _, hl, err := ParseHeader(h[:i], math.MaxUint64); hl != 0 || err != nil {
				t.Fatalf("%d: prefix %d parsed", n, i)
			}
		}
	}
	// A long frame with a small size is accepted (libzmq accepts it too).
	if _, size, _, err := ParseHeader([]byte{FlagLong, 0, 0, 0, 0, 0, 0, 0, 5}, 100); err != nil || size != 5 {
		t.Fatal(size, err)
	}
	// Sizes near 2^63 and 2^64 are refused against the cap without conversion or overflow.
	for _, size := range []uint64{1<<63 - 1, 1 << 63, math.MaxUint64, math.MaxUint64 - 8} {
		h := []byte{FlagLong | FlagCommand, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := 0; i < 8; i++ {
			h[1+i] = byte(size >> (56 - 8*i))
		}
		if _, _, _, err := ParseHeader(h, 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if _, _, _, err := ParseHeader([]byte{0, 201}, 200); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func TestCommands(t *testing.T) {
	b := AppendCommand(nil, "READY", []byte("meta"))
	if !bytes.Equal(b, []byte("\x04\x0a\x05READYmeta")) {
		t.Fatalf("%q", b)
	}
	name, data, err := ParseCommand(b[2:])
	if err != nil || name != "READY" || string(data) != "meta" {
		t.Fatal(name, data, err)
	}
	for _, bad := range [][]byte{nil, {0}, {5}, {5, 'R'}, {0, 'x'}} {
		if _, _, err := ParseCommand(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	long := AppendCommand(nil, "INITIATE", make([]byte, 300))
	if long[0] != FlagCommand|FlagLong {
		t.Fatalf("INITIATE frame flags %x, want 0x06", long[0])
	}
}

// PINGs of 5, 6, 7 and 7+17 bytes: the short ones are refused (libzmq 4.3 would echo 16
// bytes it never received), a long context is cut to the 16 bytes a PONG may carry.
func TestPingPong(t *testing.T) {
	for _, c := range []struct {
		body []byte
		ok   bool
		ctx  string
	}{
		{[]byte("\x04PING"), false, ""},
		{[]byte("\x04PING\x00"), false, ""},
		{[]byte("\x04PING\x00\x0a"), true, ""},
		{[]byte("\x04PING\x00\x0actx-abc"), true, "ctx-abc"},
		{append([]byte("\x04PING\x00\x0a"), bytes.Repeat([]byte("c"), 17)...), true, string(bytes.Repeat([]byte("c"), 16))},
		{[]byte("\x04PONG\x00\x00"), false, ""},
	} {
		ttl, ctx, err := ParsePing(c.body)
		if (err == nil) != c.ok || string(ctx) != c.ctx || (c.ok && ttl != 10) {
			t.Errorf("%q: %d %q %v", c.body, ttl, ctx, err)
		}
	}
	if p := AppendPing(nil, 10, []byte("ctx")); !bytes.Equal(p, []byte("\x04PING\x00\x0actx")) {
		t.Fatalf("%q", p)
	}
	if p := AppendPong(nil, bytes.Repeat([]byte("x"), 20)); len(p) != 5+16 {
		t.Fatalf("PONG of %d bytes", len(p))
	}
}

func TestSubscriptions(t *testing.T) {
	// The exact bytes libzmq sends (protocol-anchors §1.10).
	if b := AppendSubscription(nil, true, []byte("topicA"), true); hex.EncodeToString(b) != "09535542534352494245746f70696341" {
		t.Fatalf("%x", b)
	}
	if b := AppendSubscription(nil, false, []byte("B"), true); string(b) != "\x06CANCELB" {
		t.Fatalf("%q", b)
	}
	if b := AppendSubscription(nil, true, []byte("B"), false); string(b) != "\x01B" {
		t.Fatalf("%q", b)
	}
	for _, c := range []struct {
		body  string
		sub   bool
		topic string
		ok    bool
	}{
		{"\x09SUBSCRIBEtopic", true, "topic", true},
		{"\x09SUBSCRIBE", true, "", true},
		{"\x06CANCELx", false, "x", true},
		{"\x04PING\x00\x00", false, "", false},
		{"\x09SUBSCRIB", false, "", false},
	} {
		sub, topic, ok := ParseSubscription([]byte(c.body))
		if ok != c.ok || sub != c.sub || string(topic) != c.topic {
			t.Errorf("%q: %v %q %v", c.body, sub, topic, ok)
		}
	}
}

func FuzzGreeting(f *testing.F) {
	f.Add(libzmqGreeting(f))
	f.Add(AppendGreeting(nil, "CURVE", 0, true))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ReadGreeting(bytes.NewReader(b), "CURVE")
		if err != nil {
			if g != (Greeting{}) {
				t.Fatal("non-zero greeting on error")
			}
			return
		}
		if len(b) < GreetingSize {
			t.Fatal("accepted a short greeting")
		}
		if g2, err := ParseGreeting(b[:GreetingSize], "CURVE"); err != nil || g2 != g {
			t.Fatal("ReadGreeting and ParseGreeting disagree")
		}
	})
}

func FuzzFrameHeader(f *testing.F) {
	f.Add([]byte{0x04, 0xc8}, uint64(1<<20))
	f.Add([]byte{0x06, 0, 0, 0, 0, 0, 0, 1, 0x24}, uint64(1<<20))
	f.Add([]byte{0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, b []byte, max uint64) {
		flags, size, n, err := ParseHeader(b, max)
		if err != nil || n == 0 {
			if flags != 0 || size != 0 || n != 0 {
				t.Fatal("non-zero outputs without a header")
			}
			return
		}
		if size > max || n > len(b) {
			t.Fatalf("size %d over cap %d, or header %d beyond input", size, max, n)
		}
		if size > math.MaxInt64 {
			return // AppendHeader takes an int
		}
		if out := AppendHeader(nil, flags, int(size)); n == len(out) && !bytes.Equal(out[1:], b[1:n]) {
			t.Fatalf("re-encoding differs: %x vs %x", out, b[:n])
		}
	})
}

func FuzzCommand(f *testing.F) {
	f.Add([]byte("\x05READYmeta"))
	f.Add([]byte("\x04PING\x00\x0actx"))
	f.Add([]byte("\x09SUBSCRIBEtopic"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, data, err := ParseCommand(b)
		if err != nil {
			if name != "" || data != nil {
				t.Fatal("non-zero outputs on error")
			}
		} else if out := AppendCommand(nil, name, data); !bytes.Equal(out[HeaderSize(len(b)):], b) {
			t.Fatal("re-marshal differs")
		}
		ttl, ctx, err := ParsePing(b)
		if err == nil {
			if len(ctx) > MaxPingContext || len(ctx) > len(b)-7 {
				t.Fatalf("context of %d bytes from %d", len(ctx), len(b))
			}
			if !bytes.HasPrefix(b[7:], ctx) || AppendPing(nil, ttl, ctx) == nil {
				t.Fatal("context is not the PING's")
			}
		} else if ttl != 0 || ctx != nil {
			t.Fatal("non-zero PING on error")
		}
		ParseSubscription(b)
	})
}
