package zap

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// waitTimeout bounds every wait for a reload; the debounce is 75 ms, so this is generous
// enough for a loaded CI machine and still ends a broken test.
const waitTimeout = 20 * time.Second

func newKey(t testing.TB) key.PublicKey {
	t.Helper()
	kp, err := key.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Public
}

// certText is a public certificate as pyzmq's create_certificates writes it. Every key
// gives a file of the same size.
func certText(pub key.PublicKey) string {
	return "#   ****  Generated on 2025-03-04 10:11:12.123456 by pyzmq  ****\n" +
		"#   ZeroMQ CURVE Public Certificate\n" +
		"#   Exchange securely, or use a secure mechanism to verify the contents\n" +
		"#   of this file after exchange. Store public certificates in your home\n" +
		"#   directory, in the .curve subdirectory.\n" +
		"\n" +
		"metadata\n" +
		"curve\n" +
		"    public-key = \"" + pub.String() + "\"\n"
}

// writeKey writes pub's certificate to dir/name the way pyzmq does: truncate and write.
func writeKey(t testing.TB, dir, name string, pub key.PublicKey) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(certText(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newAuth(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	a := New(cfg)
	t.Cleanup(func() { a.Close() })
	return a
}

func request(domain string, k key.PublicKey) *handshake.Request {
	return &handshake.Request{Domain: domain, Address: "127.0.0.1", Mechanism: "CURVE", ClientKey: k}
}

func status(a *Authenticator, k key.PublicKey) int {
	return a.Authorize(context.Background(), request("", k)).Status
}

// waitFor waits until cond holds, re-checking after each generation; it never sleeps.
func waitFor(t testing.TB, a *Authenticator, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for range 100000 {
		ch := a.Reloaded()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
	}
	t.Fatalf("gave up waiting for %s after 100000 reloads", what)
}

func waitStatus(t testing.TB, a *Authenticator, k key.PublicKey, want int) {
	t.Helper()
	waitFor(t, a, fmt.Sprintf("key %s to get %d", k.Short(), want), func() bool { return status(a, k) == want })
}

// conn is an io.Closer that records being closed.
type conn struct {
	closed chan struct{}
	n      atomic.Int32
}

func newConn() *conn { return &conn{closed: make(chan struct{})} }

func (c *conn) Close() error {
	if c.n.Add(1) == 1 {
		close(c.closed)
	}
	return nil
}

func (c *conn) isClosed() bool { return c.n.Load() > 0 }

func waitClosed(t testing.TB, c *conn, what string) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s to be closed", what)
	}
}
