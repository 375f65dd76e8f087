package zap

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// recorder is a slog.Handler that keeps every record, as text and as attributes.
type recorder struct {
	mu      sync.Mutex
	text    strings.Builder
	records []map[string]string // message under "msg", then the attributes
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.text.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		fmt.Fprintf(&r.text, " %s=%s", a.Key, a.Value)
		return true
	})
	r.text.WriteString("\n")
	r.records = append(r.records, m)
	return nil
}

// find returns the first record with msg whose attributes include want.
func (r *recorder) find(msg string, want map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.records {
		if m["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && m[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

// Decisions are logged at debug level with the key abbreviated; neither a full key nor
// a secret reaches the log, even from a secret certificate in the directory.
func TestLogging(t *testing.T) {
	rec := &recorder{}
	logger := slog.New(rec)
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

	for _, c := range []struct {
		msg  string
		want map[string]string
	}{
		{"ALLOWED (CURVE)", map[string]string{"domain": "*", "addr": "127.0.0.1", "key": allowed.Short(), "status": "200", "file": "client_a.key"}},
		{"DENIED (CURVE)", map[string]string{"domain": "*", "addr": "127.0.0.1", "key": unknown.Short(), "reason": "Unknown key"}},
		{"zap: skipping key file", map[string]string{"file": "broken.key"}},
	} {
		if !rec.find(c.msg, c.want) {
			t.Errorf("no %q record with %v in:\n%s", c.msg, c.want, rec.text.String())
		}
	}
	out := rec.text.String()
	for name, secret := range map[string]string{
		"allowed key": allowed.String(), "unknown key": unknown.String(),
		"secret key": kp.Secret.UnsafeZ85(), "truncated secret key": kp.Secret.UnsafeZ85()[:39],
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the %s:\n%s", name, out)
		}
	}
}
