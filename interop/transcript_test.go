package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// goldenTranscript is package handshake's golden transcript: command bodies of one
// handshake and three MESSAGEs, made with the zmq_curve(7) test key pairs and
// deterministic randomness (its header says how).
const goldenTranscript = "../handshake/testdata/transcript.golden"

// The zmq_curve(7) test key pairs (curve/key/testdata/keypairs.txt).
const (
	curve7ClientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
	curve7ServerSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

// loadTranscript reads "NAME HEX" lines.
func loadTranscript(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, h, _ := strings.Cut(l, " ")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[name] = b
	}
	return out
}

// metadataBytes encodes properties by hand (RFC 23: name length, name, 4-byte big-endian
// value length, value), independently of package handshake.
func metadataBytes(props ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(props); i += 2 {
		name, value := props[i], props[i+1]
		b = append(b, byte(len(name)))
		b = append(b, name...)
		b = append(b, byte(len(value)>>24), byte(len(value)>>16), byte(len(value)>>8), byte(len(value)))
		b = append(b, value...)
	}
	return b
}

// Our golden handshake transcript is not only self-consistent: libsodium (PyNaCl), fed
// the secrets and told nothing else, opens every box in it the way each receiver would,
// and finds what RFC 26 says must be there.
//
// The transient secrets and the cookie key are not in the transcript, but its header
// says how they were drawn: SHA-256 in counter mode seeded "client" and "server", the
// transient secret first and, on the server, the cookie key next. The test reproduces
// them and checks them against the transient public keys on the wire before use.
func TestGoldenTranscriptOpensWithLibsodium(t *testing.T) {
	t.Parallel()
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, py, "-c", "import nacl.bindings").CombinedOutput(); err != nil {
		t.Skipf("libsodium cross-check skipped: %s cannot import nacl (install Debian's python3-nacl): %v: %s", py, err, bytes.TrimSpace(out))
	}
	tr := loadTranscript(t, goldenTranscript)

	pair := func(secret []byte) key.KeyPair { // 40 Z85 characters or 32 raw bytes
		s, err := key.ParseSecretKey(secret)
		if err != nil {
			t.Fatal(err)
		}
		return key.NewKeyPair(s)
	}
	srv, cli := pair([]byte(curve7ServerSecret)), pair([]byte(curve7ClientSecret))
	clientRand, serverRand := pseudoRandom("client", 32), pseudoRandom("server", 64)
	cliT, srvT := pair(clientRand), pair(serverRand[:32])
	if !bytes.Equal(tr["hello"][80:112], cliT.Public[:]) {
		t.Fatal("the client transient key in HELLO is not the one the documented randomness gives")
	}

	secrets := map[string]string{
		"server_secret":           hex.EncodeToString(srv.Secret.UnsafeBytes()[:]),
		"client_secret":           hex.EncodeToString(cli.Secret.UnsafeBytes()[:]),
		"server_transient_secret": hex.EncodeToString(serverRand[:32]),
		"client_transient_secret": hex.EncodeToString(clientRand),
		"cookie_key":              hex.EncodeToString(serverRand[32:64]),
	}
	in, _ := json.Marshal(secrets)
	cmd := exec.CommandContext(ctx, py, "peers/open_transcript.py", goldenTranscript)
	cmd.Stdin = bytes.NewReader(in) // secrets never on a command line
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("open_transcript.py: %v\n%s\n%s", err, out, stderr.String())
	}
	var r struct {
		ServerPublic          string            `json:"server_public"`
		ClientPublic          string            `json:"client_public"`
		ServerTransientPublic string            `json:"server_transient_public"`
		ClientTransientPublic string            `json:"client_transient_public"`
		HelloTransient        string            `json:"hello_transient"`
		Hello                 string            `json:"hello"`
		Welcome               string            `json:"welcome"`
		Cookie                string            `json:"cookie"`
		Initiate              string            `json:"initiate"`
		Vouch                 string            `json:"vouch"`
		Ready                 string            `json:"ready"`
		Messages              map[string]string `json:"messages"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("open_transcript.py output %q: %v", out, err)
	}
	unhex := func(name, h string) []byte {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %q", name, h)
		}
		return b
	}
	want := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", what, got, want)
		}
	}

	// libsodium derives the same public keys from the secrets.
	want("server public key", unhex("server_public", r.ServerPublic), srv.Public[:])
	want("client public key", unhex("client_public", r.ClientPublic), cli.Public[:])
	want("client transient key", unhex("client_transient_public", r.ClientTransientPublic), cliT.Public[:])
	want("server transient key", unhex("server_transient_public", r.ServerTransientPublic), srvT.Public[:])
	want("C' in HELLO", unhex("hello_transient", r.HelloTransient), cliT.Public[:])
	// HELLO's signature box holds 64 zero bytes.
	want("HELLO plaintext", unhex("hello", r.Hello), make([]byte, 64))
	// WELCOME holds S' and the cookie; the cookie holds C' and s'.
	welcome := unhex("welcome", r.Welcome)
	want("S' in WELCOME", welcome[:32], srvT.Public[:])
	if len(welcome) != 32+96 {
		t.Errorf("WELCOME plaintext of %d bytes", len(welcome))
	}
	want("cookie plaintext", unhex("cookie", r.Cookie), append(bytes.Clone(cliT.Public[:]), serverRand[:32]...))
	// INITIATE holds C, the vouch (C' and S) and the client's metadata.
	initiate := unhex("initiate", r.Initiate)
	want("C in INITIATE", initiate[:32], cli.Public[:])
	want("vouch plaintext", unhex("vouch", r.Vouch), append(bytes.Clone(cliT.Public[:]), srv.Public[:]...))
	want("INITIATE metadata", initiate[128:], metadataBytes("Socket-Type", "DEALER", "Identity", "client"))
	// READY holds the server's metadata.
	want("READY metadata", unhex("ready", r.Ready), metadataBytes("Socket-Type", "ROUTER"))
	// MESSAGEs: the flags byte (MORE = 0x01) and the payload.
	for name, plain := range map[string]string{
		"message-c2s-1": "\x01hello",
		"message-c2s-2": "\x00world",
		"message-s2c-1": "\x00reply",
	} {
		want(name, unhex(name, r.Messages[name]), []byte(plain))
	}
	if len(r.Messages) != 3 {
		t.Errorf("%d MESSAGEs opened, want 3", len(r.Messages))
	}
}
