package zap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

var (
	_ handshake.Authorizer = (*Authenticator)(nil)
	_ handshake.Tracker    = (*Authenticator)(nil)
)

// CurveAllowAny is the location that makes [Authenticator.ConfigureCurve] accept every
// client key in a domain (pyzmq's and czmq's CURVE_ALLOW_ANY).
const CurveAllowAny = "*"

// DefaultDomain is the domain that an empty ZAP domain stands for, as in pyzmq.
const DefaultDomain = "*"

// Defaults for the zero [Config].
const (
	DefaultDebounce       = 75 * time.Millisecond
	DefaultRescanInterval = 30 * time.Second
)

// Layout says which files of a key directory hold allowed client keys.
type Layout uint8

const (
	// LayoutPyzmq is pyzmq's load_certificates rule, the one Cylc relies on: the files
	// matching *.key directly in the directory (not in subdirectories). Dotfiles are
	// skipped, and secret files (*.key_secret) do not match.
	LayoutPyzmq Layout = iota
	// LayoutZauth is czmq's zcertstore rule, for zauth compatibility: every regular file in
	// the directory tree, skipping dot entries (files and directories) and names ending in
	// "_secret". Certificate metadata is returned as ZAP metadata, as zauth does.
	LayoutZauth
)

// String returns "pyzmq" or "zauth".
func (l Layout) String() string {
	switch l {
	case LayoutPyzmq:
		return "pyzmq"
	case LayoutZauth:
		return "zauth"
	}
	return fmt.Sprintf("Layout(%d)", uint8(l))
}

// CurveCallback decides on a client key for a domain (pyzmq's credentials provider). The
// domain is the normalised one ("*" for an empty domain). An error makes the handshake fail
// with status 500, or 300 if it wraps [ErrTemporary]. ctx carries the handshake deadline.
type CurveCallback func(ctx context.Context, domain string, client key.PublicKey) (bool, error)

// Config configures an [Authenticator]. The zero value is ready to use.
type Config struct {
	// Logger receives decisions at debug level (client keys abbreviated, never a secret)
	// and reload problems at warn level. Nil discards everything.
	Logger *slog.Logger
	// Debounce is how long a key directory must be quiet after a change before it is
	// rescanned; each event restarts the wait, and a rescan happens at the latest 10 times
	// Debounce after the first event. Zero means DefaultDebounce.
	Debounce time.Duration
	// RescanInterval is the period of the full rescan that backs up the watcher on
	// filesystems that lose events (NFS, SMB, FUSE). Zero means DefaultRescanInterval; a
	// negative value turns the periodic rescan off.
	RescanInterval time.Duration
	// KeepRevoked turns revocation off: by default, when a key leaves every allow-list,
	// the connections registered for it with [Authenticator.Track] are closed.
	KeepRevoked bool
	// UserID maps an allowed client key to the reply's user id (the User-Id property).
	// Nil means the key's Z85 text, as pyzmq and zauth do.
	UserID func(key.PublicKey) string

	// noWatch disables fsnotify so that tests can exercise the fallbacks alone.
	noWatch bool
}

// Authenticator is an in-process ZAP handler (RFC 27) for CURVE servers. It implements
// [handshake.Authorizer] and [handshake.Tracker]; see the package documentation. It is
// safe for concurrent use.
type Authenticator struct {
	cfg Config
	log *slog.Logger

	// policy is the configuration that Authorize reads, replaced as a whole (copy on
	// write) under mu; Authorize never locks.
	policy atomic.Pointer[policy]
	mu     sync.Mutex // serialises configuration changes and Close
	closed atomic.Bool

	gen        atomic.Uint64
	genMu      sync.Mutex
	reloaded   chan struct{} // closed and replaced on each generation; guarded by genMu
	lastReload time.Time     // guarded by genMu

	trk      tracker
	counters counters
}

// policy is an immutable snapshot of the configuration.
type policy struct {
	allow   map[string]struct{}
	deny    map[string]struct{}
	domains map[string]*domainPolicy
}

type policyKind uint8

const (
	kindAllowAny policyKind = iota + 1
	kindCallback
	kindDirectory
)

func (k policyKind) String() string {
	switch k {
	case kindAllowAny:
		return "allow-any"
	case kindCallback:
		return "callback"
	case kindDirectory:
		return "directory"
	}
	return "unknown"
}

// domainPolicy is the CURVE policy of one domain. Only src's key set changes after it is
// published, through its own atomic pointer.
type domainPolicy struct {
	kind     policyKind
	callback CurveCallback
	src      *dirSource
}

// admits reports whether some domain of p would still let k in: a directory set holding
// it, or a domain that allows any key or asks a callback (which cannot be enumerated, so it
// is assumed to). It decides revocation.
func (p *policy) admits(k key.PublicKey) bool {
	for _, dp := range p.domains {
		switch dp.kind {
		case kindAllowAny, kindCallback:
			return true
		case kindDirectory:
			if _, ok := dp.src.set.Load().keys[k]; ok {
				return true
			}
		}
	}
	return false
}

func (p *policy) clone() *policy {
	q := &policy{
		allow:   maps.Clone(p.allow),
		deny:    maps.Clone(p.deny),
		domains: maps.Clone(p.domains),
	}
	if q.domains == nil {
		q.domains = map[string]*domainPolicy{}
	}
	return q
}

// New returns an Authenticator with no domain configured: until one is, every request is
// refused with "Unknown domain". Close it to stop its directory watchers.
func New(cfg Config) *Authenticator {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.RescanInterval == 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	a := &Authenticator{cfg: cfg, log: cfg.Logger, reloaded: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.policy.Store(&policy{domains: map[string]*domainPolicy{}})
	a.trk.conns = map[key.PublicKey]map[*tracked]struct{}{}
	return a
}

func normDomain(domain string) string {
	if domain == "" {
		return DefaultDomain
	}
	return domain
}

// ConfigureCurve sets the CURVE policy of domain (an empty domain is "*"), replacing any
// previous one, as pyzmq's configure_curve does. location [CurveAllowAny] accepts every
// key; any other location is a key directory read with [LayoutPyzmq] (see
// [Authenticator.ConfigureCurveDir]).
func (a *Authenticator) ConfigureCurve(domain, location string) error {
	if location == CurveAllowAny {
		return a.setDomain(normDomain(domain), &domainPolicy{kind: kindAllowAny})
	}
	return a.ConfigureCurveDir(domain, location, LayoutPyzmq)
}

// ConfigureCurveCallback makes fn decide on every client key of domain (an empty domain is
// "*"), replacing any previous policy of that domain.
func (a *Authenticator) ConfigureCurveCallback(domain string, fn CurveCallback) error {
	if fn == nil {
		return errors.New("zap: nil callback")
	}
	return a.setDomain(normDomain(domain), &domainPolicy{kind: kindCallback, callback: fn})
}

// ConfigureCurveDir makes the keys found in dir, read with layout, the allow-list of
// domain (an empty domain is "*"), replacing any previous policy of that domain. The
// directory must exist. It is scanned before ConfigureCurveDir returns, then watched and
// rescanned whenever it changes (see the package documentation). If the first scan fails,
// nothing changes and the error is returned. Configuring the same directory and layout
// again for a domain only rescans it, like [Authenticator.Reload].
func (a *Authenticator) ConfigureCurveDir(domain, dir string, layout Layout) error {
	if a.closed.Load() {
		return ErrClosed
	}
	if layout != LayoutPyzmq && layout != LayoutZauth {
		return fmt.Errorf("zap: unknown layout %v", layout)
	}
	domain = normDomain(domain)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("zap: key directory %s: %w", dir, err)
	}
	if dp := a.policy.Load().domains[domain]; dp != nil && dp.kind == kindDirectory &&
		dp.src.dir == abs && dp.src.layout == layout {
		if err := dp.src.reload(); !errors.Is(err, errStopped) {
			return err
		}
		// Replaced or closed meanwhile: configure afresh.
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("zap: key directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s", ErrNotDirectory, abs)
	}
	src, err := newDirSource(a, domain, abs, layout)
	if err != nil {
		return err
	}
	if err := a.setDomain(domain, &domainPolicy{kind: kindDirectory, src: src}); err != nil {
		src.discard()
		return err
	}
	return nil
}

// setDomain publishes a new policy for domain, stops the source it replaces, and revokes
// the keys the change leaves out.
func (a *Authenticator) setDomain(domain string, dp *domainPolicy) error {
	a.mu.Lock()
	if a.closed.Load() {
		a.mu.Unlock()
		return ErrClosed
	}
	p := a.policy.Load().clone()
	old := p.domains[domain]
	p.domains[domain] = dp
	a.policy.Store(p)
	var loaded time.Time // a new key set goes live with the policy: a successful load
	if dp.src != nil {
		dp.src.start() // under mu, so that Close, which reads the policy under it, stops it
		loaded = time.Now()
	}
	a.mu.Unlock()

	if old != nil && old.src != nil {
		old.src.stop()
	}
	a.log.Debug("zap: domain configured", "domain", domain, "policy", dp.kind.String(), "location", dp.location())
	a.published(loaded)
	return nil
}

func (dp *domainPolicy) location() string {
	if dp.src != nil {
		return dp.src.dir
	}
	return ""
}

// Allow adds addresses to the allow list: once it is non-empty, only the listed peer
// addresses may proceed to the CURVE check (an allowed address still needs an allowed
// key). Addresses match exactly, as libzmq writes them in ZAP requests ("127.0.0.1").
// It fails with [ErrAllowDeny] if a deny list is configured.
func (a *Authenticator) Allow(addrs ...string) error {
	return a.setAddrs(true, addrs)
}

// Deny adds addresses to the deny list: listed peer addresses are refused. It fails with
// [ErrAllowDeny] if an allow list is configured.
func (a *Authenticator) Deny(addrs ...string) error {
	return a.setAddrs(false, addrs)
}

func (a *Authenticator) setAddrs(allow bool, addrs []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return ErrClosed
	}
	if len(addrs) == 0 {
		return nil
	}
	p := a.policy.Load().clone()
	list, other := &p.allow, p.deny
	if !allow {
		list, other = &p.deny, p.allow
	}
	if len(other) != 0 {
		return ErrAllowDeny
	}
	if *list == nil {
		*list = map[string]struct{}{}
	}
	for _, addr := range addrs {
		(*list)[addr] = struct{}{}
	}
	a.policy.Store(p)
	a.bump(time.Time{})
	return nil
}

// Reload rescans every key directory now and returns once the new key sets are live (and
// the connections of revoked keys are being closed). It returns the errors of the rescans
// that failed; for those directories the last good set stays in force. Files skipped by a
// successful rescan are not errors: see [Stats].
func (a *Authenticator) Reload() error {
	if a.closed.Load() {
		return ErrClosed
	}
	p := a.policy.Load()
	var errs []error
	for _, d := range slices.Sorted(maps.Keys(p.domains)) {
		src := p.domains[d].src
		if src == nil {
			continue
		}
		// A source stopped meanwhile was replaced (its successor scanned on start) or
		// closed (reported below).
		if err := src.reload(); err != nil && !errors.Is(err, errStopped) {
			errs = append(errs, err)
		}
	}
	if a.closed.Load() {
		return ErrClosed
	}
	return errors.Join(errs...)
}

// Generation returns a number that increases each time a new key set or configuration
// goes live, including rescans that found no change.
func (a *Authenticator) Generation() uint64 { return a.gen.Load() }

// Reloaded returns a channel that is closed when the generation next increases. Take the
// channel before checking the condition you wait for, so that no change is missed.
func (a *Authenticator) Reloaded() <-chan struct{} {
	a.genMu.Lock()
	defer a.genMu.Unlock()
	return a.reloaded
}

// bump starts a new generation; a non-zero t records a successful reload.
func (a *Authenticator) bump(t time.Time) {
	a.genMu.Lock()
	a.gen.Add(1)
	if !t.IsZero() {
		a.lastReload = t
	}
	close(a.reloaded)
	a.reloaded = make(chan struct{})
	a.genMu.Unlock()
}

// published is called after a key set or the configuration changed: it revokes, then
// starts a new generation, so that waiters see revocations under way. A non-zero t
// records a successful reload.
func (a *Authenticator) published(t time.Time) {
	a.revoke()
	a.bump(t)
}

// Close stops the directory watchers and waits for them and for pending revocations.
// Afterwards Authorize refuses every request with status 500; connections already
// tracked are left alone. Close is idempotent.
func (a *Authenticator) Close() error {
	a.mu.Lock()
	if a.closed.Swap(true) {
		a.mu.Unlock()
		return nil
	}
	p := a.policy.Load()
	a.mu.Unlock()
	for _, dp := range p.domains {
		if dp.src != nil {
			dp.src.stop()
		}
	}
	a.trk.close()
	return nil
}
