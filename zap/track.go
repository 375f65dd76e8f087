package zap

import (
	"io"
	"sync"

	"github.com/curvezmq/curvezmq/curve/key"
)

// tracker holds the live connections registered with Track, by client key.
type tracker struct {
	mu      sync.Mutex
	conns   map[key.PublicKey]map[*tracked]struct{}
	closed  bool
	closing sync.WaitGroup // revocations under way
}

type tracked struct {
	key  key.PublicKey
	c    io.Closer
	once sync.Once
}

// Track registers a live connection that was allowed with clientKey, so that it can be
// closed when the key is revoked: when a reload or a configuration change leaves the key
// in no allow-list, conn.Close is called (from another goroutine). A key counts as still
// allowed while some domain's key set holds it or some domain allows any key or asks a
// callback. If the key was revoked between the handshake and Track, conn is closed at
// once. Call untrack when the connection ends; it is idempotent. With
// [Config.KeepRevoked], or after Close, Track does nothing.
func (a *Authenticator) Track(clientKey key.PublicKey, conn io.Closer) (untrack func()) {
	if a.cfg.KeepRevoked || conn == nil {
		return func() {}
	}
	t := &tracked{key: clientKey, c: conn}
	a.trk.mu.Lock()
	if a.trk.closed {
		a.trk.mu.Unlock()
		return func() {}
	}
	set := a.trk.conns[clientKey]
	if set == nil {
		set = map[*tracked]struct{}{}
		a.trk.conns[clientKey] = set
	}
	set[t] = struct{}{}
	a.trk.mu.Unlock()

	// A swap stores its set before revoke takes the lock, so either revoke saw t above or
	// this check sees the new set; both may close t, which closes once.
	if !a.policy.Load().admits(clientKey) {
		a.trk.remove(t)
		a.closeRevoked([]*tracked{t})
	}
	return func() { a.trk.remove(t) }
}

func (tr *tracker) remove(t *tracked) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if set := tr.conns[t.key]; set != nil {
		delete(set, t)
		if len(set) == 0 {
			delete(tr.conns, t.key)
		}
	}
}

// revoke closes the tracked connections whose key the current policy no longer admits.
func (a *Authenticator) revoke() {
	if a.cfg.KeepRevoked {
		return
	}
	p := a.policy.Load()
	var victims []*tracked
	a.trk.mu.Lock()
	for k, set := range a.trk.conns {
		if p.admits(k) {
			continue
		}
		for t := range set {
			victims = append(victims, t)
		}
		delete(a.trk.conns, k)
	}
	a.trk.mu.Unlock()
	a.closeRevoked(victims)
}

// closeRevoked closes each connection in its own goroutine, so that a slow Close holds
// up neither the watcher nor the others; Close waits for them. After Close, connections
// are left alone.
func (a *Authenticator) closeRevoked(victims []*tracked) {
	if len(victims) == 0 {
		return
	}
	a.trk.mu.Lock()
	defer a.trk.mu.Unlock()
	if a.trk.closed {
		return
	}
	for _, t := range victims {
		t.once.Do(func() {
			a.counters.revoked.Add(1)
			a.log.Info("zap: closing connection of revoked key", "key", t.key.Short())
			a.trk.closing.Go(func() {
				if err := t.c.Close(); err != nil {
					a.log.Debug("zap: closing revoked connection", "key", t.key.Short(), "err", err)
				}
			})
		})
	}
}

// close stops tracking and waits for the revocations under way.
func (tr *tracker) close() {
	tr.mu.Lock()
	tr.closed = true
	clear(tr.conns)
	tr.mu.Unlock()
	tr.closing.Wait()
}
