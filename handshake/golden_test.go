package handshake

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.golden")

const goldenPath = "testdata/transcript.golden"

// goldenTranscript makes a whole handshake and two MESSAGEs with the zmq_curve(7) keys and
// deterministic randomness, so that every byte is reproducible.
func goldenTranscript(t testing.TB) [][2]string {
	cfg := newConfigs(t)
	cfg.client.Rand = newDetRand("client")
	cfg.server.Rand = newDetRand("server")
	tr := run(t, cfg, func(r *Request) Result { return Result{Status: StatusOK, UserID: "alice"} })
	c2s, _ := tr.client.Seal(nil, MessageMore, []byte("hello"))
	c2s2, _ := tr.client.Seal(nil, 0, []byte("world"))
	s2c, _ := tr.server.Seal(nil, 0, []byte("reply"))
	return [][2]string{
		{"hello", hex.EncodeToString(tr.hello)},
		{"welcome", hex.EncodeToString(tr.welcome)},
		{"initiate", hex.EncodeToString(tr.initiate)},
		{"ready", hex.EncodeToString(tr.ready)},
		{"message-c2s-1", hex.EncodeToString(c2s)},
		{"message-c2s-2", hex.EncodeToString(c2s2)},
		{"message-s2c-1", hex.EncodeToString(s2c)},
	}
}

// loadGolden returns the named command bodies of testdata/transcript.golden.
func loadGolden(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if !ok || err != nil {
			t.Fatalf("bad golden line %q", line)
		}
		out[name] = b
	}
	if len(out) == 0 {
		t.Fatal("empty golden transcript")
	}
	return out
}

func TestGoldenTranscript(t *testing.T) {
	got := goldenTranscript(t)
	if *update {
		var b bytes.Buffer
		b.WriteString("# A CurveZMQ transcript (command bodies, hex) made by this package: the zmq_curve(7)\n")
		b.WriteString("# test key pairs, SHA-256 counter-mode randomness seeded \"client\" and \"server\",\n")
		b.WriteString("# client metadata Socket-Type=DEALER Identity=client, server Socket-Type=ROUTER.\n")
		b.WriteString("# Regenerate only with: go test ./handshake -run TestGoldenTranscript -update\n")
		for _, kv := range got {
			fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
		}
		if err := os.WriteFile(goldenPath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := loadGolden(t)
	for _, kv := range got {
		if hex.EncodeToString(want[kv[0]]) != kv[1] {
			t.Errorf("%s differs from %s (run with -update only if the change is intended)", kv[0], goldenPath)
		}
	}
}

// TestNoStrictPrefixParses: no strict prefix of a valid command is accepted, by the
// parser for fixed-size commands and by the state machine (parse and decrypt) for the
// variable-size ones, each fed to a freshly reproduced, deterministic handshake state.
func TestNoStrictPrefixParses(t *testing.T) {
	g := loadGolden(t)
	fixed := map[string]func([]byte) error{
		"hello":   func(b []byte) error { var m helloCmd; return m.unmarshal(b) },
		"welcome": func(b []byte) error { var m welcomeCmd; return m.unmarshal(b) },
		"error":   func(b []byte) error { var m errorCmd; return m.unmarshal(b) },
	}
	g["error"] = (&errorCmd{"400"}).marshal(nil)
	for name, parse := range fixed {
		for i := 0; i < len(g[name]); i++ {
			if parse(g[name][:i]) == nil {
				t.Errorf("%s: a prefix of %d bytes parses", name, i)
			}
		}
	}
	// The states just before INITIATE, READY and the first MESSAGE, reproduced each time.
	states := func() (*Client, *Server) {
		cfg := newConfigs(t)
		cfg.client.Rand = newDetRand("client")
		cfg.server.Rand = newDetRand("server")
		c, _ := NewClient(cfg.client)
		s, _ := NewServer(cfg.server)
		h, _ := c.Hello(nil)
		w, _ := s.ReadHello(nil, h)
		c.ReadWelcome(nil, w)
		return c, s
	}
	full := map[string]func([]byte) error{
		"initiate": func(b []byte) error {
			_, s := states()
			_, err := s.ReadInitiate(b)
			return err
		},
		"ready": func(b []byte) error {
			c, _ := states()
			_, err := c.ReadReady(b)
			return err
		},
		"message-s2c-1": func(b []byte) error {
			c, _ := states()
			sess, err := c.ReadReady(g["ready"])
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = sess.OpenMessage(bytes.Clone(b))
			return err
		},
	}
	for name, parse := range full {
		if err := parse(g[name]); err != nil {
			t.Fatalf("%s: the whole command fails: %v", name, err)
		}
		for i := 0; i < len(g[name]); i++ {
			if parse(g[name][:i]) == nil {
				t.Errorf("%s: a prefix of %d bytes is accepted", name, i)
			}
		}
	}
}
