package interop

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/zap"
)

// Tests of package zap with libzmq clients: our server's Authorizer is a zap.Authenticator
// watching a key directory, as a Cylc scheduler's is.

// zapServerKinds are the servers the zap tests run against: curve.Listen, and a zmq4 REP
// socket on a curve:// endpoint.
var zapServerKinds = []string{"curve.Listen", "zmq4 REP"}

// zapEchoServer starts a REP server of kind with cfg and returns its address and, for
// curve.Listen, a function that takes the next connection to complete its handshake and
// echoes the requests want on it in the background, reporting on the channel (a zmq4
// REP socket echoes every request by itself).
func zapEchoServer(t *testing.T, kind string, cfg *curve.Config) (addr string, echo func(want [][][]byte) <-chan error) {
	t.Helper()
	switch kind {
	case "curve.Listen":
		cfg.SocketType = "REP"
		s := startGoServer(t, cfg)
		return s.addr, func(want [][][]byte) <-chan error {
			t.Helper()
			return echoN(s.accept(t), want, true)
		}
	case "zmq4 REP":
		cfg.Server = true
		rep := zmq4.NewRep(curve.WithConfig(context.Background(), cfg))
		if err := rep.Listen("curve://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				m, err := rep.Recv()
				if err != nil {
					return // closed
				}
				rep.Send(m)
			}
		})
		t.Cleanup(func() {
			rep.Close()
			wg.Wait()
		})
		return rep.Addr().String(), func([][][]byte) <-chan error {
			errc := make(chan error, 1)
			errc <- nil
			return errc
		}
	}
	t.Fatalf("unknown server kind %q", kind)
	return "", nil
}

// zapWaitKeys waits, on the authenticator's reload signal, until it holds n keys.
func zapWaitKeys(t *testing.T, auth *zap.Authenticator, n int) {
	t.Helper()
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
	for {
		ch := auth.Reloaded() // taken before the check, so no reload is missed
		if auth.Stats().Keys == n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("the authenticator holds %d keys after %v, want %d", auth.Stats().Keys, eventWait, n)
		}
	}
}

// zapMonitorCount waits until the peer has reported at least n monitor events called name.
func zapMonitorCount(p *peer, name string, n int) {
	p.t.Helper()
	p.await(eventWait, strconv.Itoa(n)+" monitor events "+name, func() bool {
		got := 0
		for _, l := range p.monitor {
			if l.Name == name {
				got++
			}
		}
		return got >= n
	})
}

// A pyzmq REQ client whose key is not yet in our server's key directory is refused:
// ERROR 400, which its monitor reports as HANDSHAKE_FAILED_AUTH 400. Its key file is
// then written into the watched directory while the server runs; once the authenticator
// has reloaded (no sleep, no restart), a new socket of the same client is accepted and
// gets its replies. When the file is removed, our server closes the live connection;
// libzmq reconnects at once and is refused with 400.
func TestLibzmqClientKeyAddedToZapDirectory(t *testing.T) {
	for _, kind := range zapServerKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			python(t)
			srv, cli := newKeyPair(t), newKeyPair(t)
			dir := t.TempDir()
			auth := zap.New(zap.Config{})
			t.Cleanup(func() { auth.Close() })
			if err := auth.ConfigureCurve("*", dir); err != nil {
				t.Fatal(err)
			}
			ev := newEventLog()
			addr, echo := zapEchoServer(t, kind, &curve.Config{KeyPair: srv, Authorizer: auth,
				Events: func(e curve.Event) { auth.Observe(e); ev.add(e) }})

			py := startPeer(t, "zap_client.py", "--connect=tcp://"+addr,
				"--server-key="+srv.Public.String(), "--public="+cli.Public.String(), "--secret="+z85Secret(cli))
			py.ready()
			wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 400)
			if v := py.waitMonitor("HANDSHAKE_FAILED_AUTH"); v != 400 {
				t.Fatalf("libzmq HANDSHAKE_FAILED_AUTH value %d, want 400", v)
			}

			keyFile := filepath.Join(dir, "client.key")
			if err := os.WriteFile(keyFile, keystore.PublicCertificate(cli.Public, time.Now()), 0o600); err != nil {
				t.Fatal(err)
			}
			zapWaitKeys(t, auth, 1)
			py.command("renewed", map[string]any{"op": "renew"})
			wantEvent(t, ev.next(t), curve.EventHandshakeSucceeded, 0)
			if v := py.waitMonitor("HANDSHAKE_SUCCEEDED"); v != 0 {
				t.Fatalf("libzmq HANDSHAKE_SUCCEEDED value %d", v)
			}
			msgs := [][][]byte{msg("after the key was added"), msg("a", "bb")}
			errc := echo(msgs)
			replies := py.request(replyWait, msgs...)
			waitErr(t, errc)
			for i := range msgs {
				wantMsg(t, "reply "+strconv.Itoa(i), replies[i], msgs[i])
			}

			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
			zapWaitKeys(t, auth, 0)
			zapMonitorCount(py, "DISCONNECTED", 1)
			wantEvent(t, ev.next(t), curve.EventHandshakeFailedAuth, 400) // libzmq came back
			zapMonitorCount(py, "HANDSHAKE_FAILED_AUTH", 2)

			st := auth.Stats()
			if st.Allowed != 1 || st.Denied["unknown_key"] != 2 || st.Revoked != 1 ||
				st.Handshakes.Succeeded != 1 || st.Handshakes.FailedAuth["400"] != 2 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}
