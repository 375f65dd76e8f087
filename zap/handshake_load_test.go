package zap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// loadAuth is the Authenticator as the load test's server sees it. Its Authorize checks
// every decision made wholly while a round is live (the directory rewritten and reloaded,
// and not being rewritten again) against that round's directory. Its Track hands the
// Authenticator a closer that waits until the application's Handshake has returned: a
// Close that overlaps the end of curve.Conn's handshake races inside package curve
// (TestKnownBugCurveCloseDuringFinishHandshake), and keys are revoked at every round.
type loadAuth struct {
	*Authenticator
	phase    *atomic.Uint64 // 2r while round r is live, odd while the directory changes
	expected [][]bool       // round → pool index → allowed
	index    map[key.PublicKey]int
	checks   chan uint64 // the phase of each checked decision
	checked  atomic.Int64
	wrong    atomic.Int64
	first    atomic.Pointer[string]

	mu     sync.Mutex
	hsDone map[*curve.Conn]chan struct{} // closed once the application's Handshake returned
}

func (l *loadAuth) Authorize(ctx context.Context, req *handshake.Request) handshake.Result {
	before := l.phase.Load()
	res := l.Authenticator.Authorize(ctx, req)
	after := l.phase.Load()
	if before == after && before%2 == 0 {
		i, ok := l.index[req.ClientKey]
		if want := ok && l.expected[before/2][i]; (res.Status == handshake.StatusOK) != want {
			l.wrong.Add(1)
			msg := fmt.Sprintf("round %d key %d: status %d, want allowed=%v", before/2, i, res.Status, want)
			l.first.CompareAndSwap(nil, &msg)
		}
		l.checked.Add(1)
		select {
		case l.checks <- before:
		default:
		}
	}
	return res
}

func (l *loadAuth) Track(k key.PublicKey, c io.Closer) func() {
	l.mu.Lock()
	done, ok := l.hsDone[c.(*curve.Conn)]
	l.mu.Unlock()
	if !ok {
		panic("zap: Track of a connection the server never accepted")
	}
	return l.Authenticator.Track(k, closeAfter{c, done})
}

type closeAfter struct {
	io.Closer
	done <-chan struct{}
}

func (c closeAfter) Close() error {
	<-c.done
	return c.Closer.Close()
}

// 200 clients handshake concurrently and continuously with curve.Dial, with allowed and
// unknown keys, against a curve.Listen server (32 handshake workers) while the directory
// is rewritten 50 times (files added, removed, and overwritten with other keys of the
// same size). Each client holds its last accepted connection open, so that rewrites
// revoke live connections.
// Once each reload has completed, and until the next rewrite starts, no decision may
// disagree with the directory; every handshake ends in READY or ERROR 400, nothing else;
// the counters match what the clients saw; and nothing leaks.
func TestHandshakeConcurrentReloads(t *testing.T) {
	const (
		clients  = 200
		rounds   = 50
		poolSize = 24
		perRound = 4 // decisions checked in each round, at least
	)
	dir := t.TempDir()
	pool := make([]curve.KeyPair, poolSize)
	index := map[key.PublicKey]int{}
	for i := range pool {
		pool[i] = newClientKey(t)
		index[pool[i].Public] = i
	}
	// Round r: the first poolSize/2 keys shuffled over as many file slots, about a third
	// of the slots without a file; so each round allows a different subset, and a key
	// often moves to another file or replaces another key of the same size. Keys
	// poolSize/2 and above are never written: strangers throughout.
	expected := make([][]bool, rounds+1)
	write := func(r int) {
		rng := rand.New(rand.NewPCG(uint64(r), 3))
		perm := rng.Perm(poolSize / 2)
		want := make([]bool, poolSize)
		for i := range poolSize / 2 {
			path := filepath.Join(dir, fmt.Sprintf("client_%02d.key", i))
			if rng.IntN(3) == 0 {
				if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
					t.Error(err)
				}
				continue
			}
			want[perm[i]] = true
			if err := os.WriteFile(path, []byte(certText(pool[perm[i]].Public)), 0o600); err != nil {
				t.Error(err)
			}
		}
		expected[r] = want
	}
	write(0)

	a := New(Config{})
	configure(t, a, dir)
	var phase atomic.Uint64
	la := &loadAuth{Authenticator: a, phase: &phase, expected: expected, index: index,
		checks: make(chan uint64, 1<<16), hsDone: map[*curve.Conn]chan struct{}{}}

	// The server: every accepted connection is held until its client goes.
	var serverEvents atomic.Int64
	evSignal := make(chan struct{}, 1)
	srvKey := newClientKey(t)
	ln, err := curve.Listen("tcp", "127.0.0.1:0", &curve.Config{
		KeyPair: srvKey, Authorizer: la, HandshakeTimeout: hsTimeout,
		Events: func(ev handshake.Event) {
			a.Observe(ev)
			serverEvents.Add(1)
			select {
			case evSignal <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The server runs handshakes on 32 workers, as a server bounds them: the 200 clients'
	// handshakes are all in flight at once, up to 32 of them on the server side and the
	// rest waiting for a worker. (With a goroutine per handshake, 400 goroutines want the
	// CPU and the watcher is starved: on two cores under -race the test took 15 to 50 s.)
	const workers = 32
	var srvWG sync.WaitGroup
	pending := make(chan *curve.Conn, 4*clients)
	srvWG.Go(func() {
		defer close(pending)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			la.mu.Lock()
			la.hsDone[c] = make(chan struct{})
			la.mu.Unlock()
			pending <- c
		}
	})
	for range workers {
		srvWG.Go(func() {
			for c := range pending {
				la.mu.Lock()
				done := la.hsDone[c]
				la.mu.Unlock()
				err := c.Handshake(context.Background())
				close(done)
				forget := func() {
					c.Close()
					la.mu.Lock()
					delete(la.hsDone, c)
					la.mu.Unlock()
				}
				if err != nil {
					forget()
					continue
				}
				srvWG.Go(func() {
					defer forget()
					for {
						if _, err := c.Recv(nil); err != nil {
							return // the client left, or the key was revoked
						}
					}
				})
			}
		})
	}

	// The clients.
	var (
		stop                  = make(chan struct{})
		cliWG                 sync.WaitGroup
		accepted, refused     atomic.Int64
		clientWrong           atomic.Int64
		otherErrs             atomic.Int64
		firstOther, firstCliW atomic.Pointer[string]
	)
	client := func(n int) {
		cliWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(n), 2))
			var held *curve.Conn
			defer func() {
				if held != nil {
					held.Close()
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(poolSize)
				before := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), hsTimeout)
				c, err := curve.Dial(ctx, "tcp", ln.Addr().String(),
					&curve.Config{KeyPair: pool[i], ServerKey: srvKey.Public, HandshakeTimeout: hsTimeout})
				cancel()
				after := phase.Load()
				var ae *curve.AuthError
				switch {
				case err == nil:
					accepted.Add(1)
					if held != nil {
						held.Close()
					}
					held = c
				case errors.As(err, &ae) && ae.Status == handshake.StatusDenied:
					refused.Add(1)
				default:
					otherErrs.Add(1)
					msg := fmt.Sprintf("key %d: %v", i, err)
					firstOther.CompareAndSwap(nil, &msg)
					continue
				}
				if before == after && before%2 == 0 && (err == nil) != expected[before/2][i] {
					clientWrong.Add(1)
					msg := fmt.Sprintf("round %d key %d: client saw %v", before/2, i, err)
					firstCliW.CompareAndSwap(nil, &msg)
				}
			}
		})
	}
	// Start the clients ten at a time, each ten once the server has finished one more
	// handshake, so that their handshakes are spread out in time rather than all at the
	// same stage at once (which makes decisions come in bursts).
	for n := range clients {
		if n%10 == 0 && n > 0 {
			select {
			case <-evSignal:
			case <-time.After(waitTimeout):
				t.Fatal("no handshake completed while starting the clients")
			}
		}
		client(n)
	}

	start := time.Now()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for r := 1; r <= rounds; r++ {
		phase.Add(1)
		write(r)
		if err := a.Reload(); err != nil {
			t.Errorf("round %d: %v", r, err)
		}
		live := phase.Add(1)
	wait:
		for n := 0; n < perRound; {
			select {
			case p := <-la.checks:
				if p == live {
					n++
				}
			case <-deadline.C:
				t.Errorf("round %d: only %d decisions checked before the deadline", r, n)
				break wait
			}
		}
	}
	phase.Add(1) // no more checking
	close(stop)
	cliWG.Wait()
	elapsed := time.Since(start)

	// Every client handshake has its server event (which may come after the client's
	// answer).
	total := accepted.Load() + refused.Load() + otherErrs.Load()
	for serverEvents.Load() < total {
		select {
		case <-evSignal:
		case <-time.After(waitTimeout):
			t.Fatalf("%d server events for %d handshakes", serverEvents.Load(), total)
		}
	}
	ln.Close()
	srvWG.Wait()
	a.Close()

	if n := la.wrong.Load(); n != 0 {
		t.Errorf("%d wrong decisions; first: %s", n, *la.first.Load())
	}
	if n := clientWrong.Load(); n != 0 {
		t.Errorf("%d wrong outcomes seen by clients; first: %s", n, *firstCliW.Load())
	}
	if n := otherErrs.Load(); n != 0 {
		t.Errorf("%d handshakes ended other than in READY or ERROR 400; first: %s", n, *firstOther.Load())
	}
	st := a.Stats()
	if st.Handshakes.Succeeded != uint64(accepted.Load()) || st.Handshakes.FailedAuth["400"] != uint64(refused.Load()) {
		t.Errorf("handshake counters %+v; clients saw %d accepted and %d refused", st.Handshakes, accepted.Load(), refused.Load())
	}
	if st.Allowed != uint64(accepted.Load()) || st.Denied["unknown_key"] != uint64(refused.Load()) {
		t.Errorf("decisions: allowed %d, unknown key %d; clients saw %d accepted and %d refused",
			st.Allowed, st.Denied["unknown_key"], accepted.Load(), refused.Load())
	}
	if st.Revoked == 0 {
		t.Error("no live connection was revoked")
	}
	t.Logf("%d rounds in %v: %d handshakes (%d accepted, %d refused), %d decisions checked, %d revoked, generation %d",
		rounds, elapsed, total, accepted.Load(), refused.Load(), la.checked.Load(), st.Revoked, st.Generation)
	goleak.VerifyNone(t)
}
