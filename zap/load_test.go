package zap

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/curvezmq/curvezmq/curve/key"
)

// 200 concurrent callers of Authorize, with allowed and unknown keys, while the directory
// is rewritten 50 times (files added, removed and overwritten with other keys of the same
// size). Once each Reload has returned, and until the next rewrite starts, no decision
// may disagree with the directory's contents.
func TestConcurrentReloads(t *testing.T) {
	const (
		callers  = 200
		rounds   = 50
		poolSize = 24
		maxCalls = 1_000_000 // per caller: a bound, never reached in practice
	)
	dir := t.TempDir()
	pool := make([]key.PublicKey, poolSize)
	for i := range pool {
		pool[i] = newKey(t)
	}
	// Round r: the first poolSize/2 keys shuffled over as many file slots, about a third
	// of the slots without a file; so each round allows a different subset, and a key
	// often moves to another file or replaces another key of the same size. Keys
	// poolSize/2 and above are never written, so those keys stay unknown throughout.
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
			if err := os.WriteFile(path, []byte(certText(pool[perm[i]])), 0o600); err != nil {
				t.Error(err)
			}
		}
		expected[r] = want
	}
	write(0)

	a := New(Config{})
	configure(t, a, dir)

	// phase is 2r while round r is live and stable, odd while the directory is rewritten.
	var phase atomic.Uint64
	var wrong, checked atomic.Int64
	var firstWrong atomic.Pointer[string]
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for range maxCalls {
				select {
				case <-done:
					return
				default:
				}
				i := rng.IntN(poolSize)
				before := phase.Load()
				got := status(a, pool[i])
				if got == 200 && c%4 == 0 {
					conn := newConn()
					a.Track(pool[i], conn)() // exercise the tracker under the race detector
				}
				after := phase.Load()
				runtime.Gosched() // let the writer and the watcher run among 200 busy callers
				if before != after || before%2 != 0 {
					continue
				}
				checked.Add(1)
				if want := expected[before/2][i]; (got == 200) != want {
					wrong.Add(1)
					msg := fmt.Sprintf("round %d key %d: got %d, want allowed=%v", before/2, i, got, want)
					firstWrong.CompareAndSwap(nil, &msg)
				}
			}
		})
	}

	start := time.Now()
	for r := 1; r <= rounds; r++ {
		phase.Add(1)
		write(r)
		if err := a.Reload(); err != nil {
			t.Errorf("round %d: %v", r, err)
		}
		phase.Add(1)
		// Keep the round live until every caller could have checked once (bounded).
		target := checked.Load() + callers
		for deadline := time.Now().Add(waitTimeout); checked.Load() < target && time.Now().Before(deadline); {
			runtime.Gosched()
		}
	}
	close(done)
	wg.Wait()
	elapsed := time.Since(start)

	if n := wrong.Load(); n != 0 {
		t.Errorf("%d wrong decisions out of %d checked; first: %s", n, checked.Load(), *firstWrong.Load())
	}
	if checked.Load() == 0 {
		t.Error("no decision was checked")
	}
	t.Logf("%d rounds in %v, %d decisions checked, generation %d", rounds, elapsed, checked.Load(), a.Generation())
	a.Close()
	goleak.VerifyNone(t)
}
