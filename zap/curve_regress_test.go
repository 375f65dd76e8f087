package zap

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// Regression tests for two bugs these tests found in package curve: a Close from a
// Tracker racing with the end of the handshake, and a 300 refusal half-closing before the
// handshake deadline.

// revokeOnAllow is an Authenticator whose allowed keys are revoked the moment they are
// allowed: the key file is removed and the directory reloaded before the decision
// reaches the server, so that Track sees a key already revoked and closes the connection
// at once (from another goroutine, as Track must).
type revokeOnAllow struct {
	*Authenticator
	t    testing.TB
	path string
}

func (r revokeOnAllow) Authorize(ctx context.Context, req *handshake.Request) handshake.Result {
	res := r.Authenticator.Authorize(ctx, req)
	if res.Status == handshake.StatusOK {
		if err := os.Remove(r.path); err != nil {
			r.t.Error(err)
		}
		if err := r.Authenticator.Reload(); err != nil {
			r.t.Error(err)
		}
	}
	return res
}

// A key revoked between Authorize and Track: Track closes the connection from another
// goroutine while curve.Conn's finishHandshake is still setting up the connection after
// Track returns (c.writing, c.writerDone, the writer and heartbeat goroutines, and the
// assignment of c.untrack), none of it under the lock that Close takes, so Close races
// with it. The race detector reports it.
func TestCurveCloseDuringFinishHandshake(t *testing.T) {

	srv := newClientKey(t)
	for range 20 {
		dir := t.TempDir()
		cli := newClientKey(t)
		path := writeKey(t, dir, "client.key", cli.Public)
		a := newAuth(t, Config{})
		configure(t, a, dir)
		ln, err := curve.Listen("tcp", "127.0.0.1:0", &curve.Config{KeyPair: srv,
			Authorizer: revokeOnAllow{a, t, path}, HeartbeatInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			if err := c.Handshake(context.Background()); err != nil {
				done <- err
				return
			}
			_, err = c.Recv(nil) // closed by the revocation
			done <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), hsTimeout)
		c, err := curve.Dial(ctx, "tcp", ln.Addr().String(), &curve.Config{KeyPair: cli, ServerKey: srv.Public})
		cancel()
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		waitClosedByServer(t, c)
		c.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the server's connection of a revoked key received a message")
			}
		case <-time.After(waitTimeout):
			t.Fatal("the server's connection of a revoked key was not closed")
		}
		ln.Close()
		a.Close()
		if st := a.Stats(); st.Revoked != 1 {
			t.Fatalf("revoked %d, want 1", st.Revoked)
		}
	}
}

// A status 300 refusal should keep the connection open and silent until the server's
// handshake deadline, as libzmq does, so that the client does not retry at once. When
// that deadline is at most errorLinger (1 s) away at the refusal, which is always the
// case with a HandshakeTimeout of 1 s or less, curve.Conn.linger half-closes the
// connection at once (its test "until.Sub(time.Now()) <= errorLinger" meant to tell the
// ERROR case from the 300 case), and the client sees EOF within milliseconds.
func TestCurve300SilentUntilDeadline(t *testing.T) {

	const deadline = 500 * time.Millisecond
	a := newAuth(t, Config{})
	err := a.ConfigureCurveCallback("", func(context.Context, string, key.PublicKey) (bool, error) {
		return false, ErrTemporary
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, kindConn, a, func(cfg *curve.Config) { cfg.HandshakeTimeout = deadline })
	start := time.Now()
	_, err = s.dial(newClientKey(t))
	elapsed := time.Since(start)
	s.waitEvent(handshake.EventHandshakeFailedAuth, 300)
	if elapsed < deadline {
		t.Fatalf("status 300: the client saw the connection end (%v) after %v, before the server's %v handshake deadline", err, elapsed, deadline)
	}
}
