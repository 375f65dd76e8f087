package zap

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// syncBuffer is a bytes.Buffer safe for the watcher goroutine and the test together.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Decisions are logged at debug level with the key abbreviated; neither a full key nor
// a secret reaches the log, even from a secret certificate in the directory.
func TestLogging(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	allowed := newKey(t)
	writeKey(t, dir, "client_a.key", allowed)
	kp, err := key.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secretText := strings.Replace(certText(kp.Public), "\"\n", "\"\n    secret-key = \""+kp.Secret.UnsafeZ85()+"\"\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "server.key"), []byte(secretText), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file whose "public key" is a secret key's text, made invalid: its error must not echo it.
	broken := strings.Replace(certText(kp.Public), kp.Public.String(), kp.Secret.UnsafeZ85()[:39], 1)
	if err := os.WriteFile(filepath.Join(dir, "broken.key"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}

	a := newAuth(t, Config{Logger: logger})
	configure(t, a, dir)
	unknown := newKey(t)
	status(a, allowed)
	status(a, unknown)
	a.Observe(handshake.Event{Kind: handshake.EventHandshakeFailedAuth, Code: 400, Server: true, PeerKey: unknown})
	a.Close()

	out := buf.String()
	for _, want := range []string{
		`msg="ALLOWED (CURVE)" domain=* addr=127.0.0.1 key=` + allowed.Short() + " status=200 reason=OK file=client_a.key",
		`msg="DENIED (CURVE)" domain=* addr=127.0.0.1 key=` + unknown.Short(),
		"file=broken.key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for name, secret := range map[string]string{
		"allowed key": allowed.String(), "unknown key": unknown.String(),
		"secret key": kp.Secret.UnsafeZ85(), "truncated secret key": kp.Secret.UnsafeZ85()[:39],
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the %s:\n%s", name, out)
		}
	}
}
