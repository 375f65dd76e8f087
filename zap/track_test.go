package zap

import (
	"os"
	"testing"
	"time"
)

// blockingConn's Close blocks until released, and reports that it was called.
type blockingConn struct {
	called, release chan struct{}
}

func (c *blockingConn) Close() error {
	close(c.called)
	<-c.release
	return nil
}

// Track and a reload never close a connection on their own goroutine: curve.Conn calls
// Track from inside its handshake, holding locks that Close takes. With a Close that
// blocks, Track of a key already revoked and a Reload that revokes a tracked key both
// return while Close is still running elsewhere.
func TestTrackClosesElsewhere(t *testing.T) {
	dir := t.TempDir()
	k, other := newKey(t), newKey(t)
	p := writeKey(t, dir, "client_a.key", k)
	po := writeKey(t, dir, "client_b.key", other)
	a := newAuth(t, Config{noWatch: true})
	configure(t, a, dir)

	live := &blockingConn{called: make(chan struct{}), release: make(chan struct{})}
	a.Track(other, live)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}

	late := &blockingConn{called: make(chan struct{}), release: make(chan struct{})}
	returned := make(chan struct{})
	go func() {
		a.Track(k, late) // revoked before Track: closed at once, but not here
		close(returned)
	}()
	for _, ch := range []chan struct{}{returned, late.called} {
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatal("Track of a revoked key blocked on Close, or never closed it")
		}
	}

	if err := os.Remove(po); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 1)
	go func() { reloaded <- a.Reload() }()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Reload blocked on the Close of a revoked connection")
	}
	select {
	case <-live.called:
	case <-time.After(waitTimeout):
		t.Fatal("the revoked live connection was not closed")
	}
	close(late.release)
	close(live.release)
	a.Close() // waits for the closes
	if st := a.Stats(); st.Revoked != 2 {
		t.Errorf("revoked %d, want 2", st.Revoked)
	}
}
