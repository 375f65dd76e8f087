package zap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxDebounceFactor bounds how long a stream of events can put a rescan off: at most this
// many times Config.Debounce after the first event.
const maxDebounceFactor = 10

// dirSource is one watched key directory. Its goroutine (run) owns the watcher and does
// every rescan, so rescans of one directory never overlap; Authorize only loads set.
type dirSource struct {
	a      *Authenticator
	domain string
	dir    string // absolute and clean
	parent string
	layout Layout
	set    atomic.Pointer[keySet]

	w    *fsnotify.Watcher // nil without a watcher: periodic rescans and Reload only
	reqs chan chan error   // Reload requests
	quit chan struct{}
	done chan struct{}
	once sync.Once

	subdirs []string // owned by run

	mu      sync.Mutex // guards the fields below, read by Stats
	st      sourceState
	errText string // last rescan error, for logging only when it changes
	badText string // last list of bad files, likewise
}

// sourceState is what Stats reports about a directory.
type sourceState struct {
	lastReload time.Time
	lastErr    error
	bad        []fileError
	files      int
	missing    bool
	watching   bool
}

// newDirSource watches dir and scans it once; [dirSource.start] starts its goroutine once
// the source is in the published policy (so that nothing it does is seen before), and
// [dirSource.discard] releases a source that never started. If the scan fails, nothing is
// left open and the error is returned.
func newDirSource(a *Authenticator, domain, dir string, layout Layout) (*dirSource, error) {
	s := &dirSource{
		a:      a,
		domain: domain,
		dir:    dir,
		parent: filepath.Dir(dir),
		layout: layout,
		reqs:   make(chan chan error),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if !a.cfg.noWatch {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			// Out of inotify instances, say: degrade to periodic rescans rather than fail.
			a.log.Warn("zap: cannot watch key directory; relying on periodic rescans", "dir", dir, "err", err)
		} else {
			s.w = w
		}
	}
	res, err := s.scanWatched()
	if err != nil {
		s.discard()
		return nil, err
	}
	s.commit(res, "start", false)
	return s, nil
}

// start runs the source's goroutine: rescans on events, timer and Reload.
func (s *dirSource) start() { go s.run() }

// discard releases a source that was never started.
func (s *dirSource) discard() {
	if s.w != nil {
		s.w.Close()
	}
}

// stop ends the goroutine of a started source and waits for it. It is idempotent.
func (s *dirSource) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

// errStopped is returned by reload when the source was stopped: its domain was
// reconfigured, or the authenticator closed.
var errStopped = errors.New("zap: key directory no longer configured")

// reload asks the goroutine for a rescan and waits until it is live.
func (s *dirSource) reload() error {
	ch := make(chan error, 1)
	select {
	case s.reqs <- ch:
	case <-s.done:
		return errStopped
	}
	return <-ch // run answers every request it takes
}

func (s *dirSource) run() {
	defer close(s.done)
	if s.w != nil {
		defer s.w.Close()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if s.w != nil {
		events, errs = s.w.Events, s.w.Errors
	}
	var tick <-chan time.Time
	if iv := s.a.cfg.RescanInterval; iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var pendingSince time.Time
	schedule := func() {
		now := time.Now()
		if pendingSince.IsZero() {
			pendingSince = now
		}
		d := s.a.cfg.Debounce
		if rest := pendingSince.Add(maxDebounceFactor * d).Sub(now); rest < d {
			d = max(rest, 0)
		}
		debounce.Reset(d)
	}
	rescan := func(why string) error {
		debounce.Stop()
		pendingSince = time.Time{}
		return s.rescan(why)
	}

	for {
		select {
		case <-s.quit:
			return
		case ch := <-s.reqs:
			ch <- rescan("reload")
		case <-debounce.C:
			rescan("change")
		case <-tick:
			rescan("timer")
		case ev, ok := <-events:
			if !ok {
				events = nil // the watcher died: periodic rescans and Reload remain
				s.setWatching(false)
				continue
			}
			if !s.relevant(ev) {
				continue
			}
			if ev.Has(fsnotify.Create) && (ev.Name == s.dir || s.layout == LayoutZauth) {
				// The directory (or, in a tree, a subdirectory) appeared: watch it before
				// its files are written, so that the rescan or a later event sees them.
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					s.addWatch(ev.Name)
				}
			}
			schedule()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				rescan("overflow") // events were lost: only a full rescan is right
				continue
			}
			s.a.log.Warn("zap: key directory watcher", "dir", s.dir, "err", err)
			schedule()
		}
	}
}

// relevant reports whether ev can change the key set. Pure attribute changes are ignored
// (the periodic rescan sees permission changes); in the parent, only the directory itself
// counts.
func (s *dirSource) relevant(ev fsnotify.Event) bool {
	if ev.Op == 0 || ev.Op == fsnotify.Chmod {
		return false
	}
	if ev.Name == s.dir || strings.HasPrefix(s.dir, ev.Name+string(filepath.Separator)) {
		return true // the directory, or one of its ancestors, came or went
	}
	if s.layout == LayoutZauth {
		return strings.HasPrefix(ev.Name, s.dir+string(filepath.Separator))
	}
	return filepath.Dir(ev.Name) == s.dir
}

// syncWatches (re)adds the watches: the parent, to see the directory deleted and created
// again, or while the parent is gone too, its nearest existing ancestor, to see the path
// made again; the directory; and, for a tree, its subdirectories. Adding an existing watch
// is harmless, and a recreated directory gets a fresh one.
func (s *dirSource) syncWatches() {
	if s.w == nil {
		return
	}
	for anc := s.parent; ; {
		err := s.w.Add(anc)
		if err == nil {
			break
		}
		up := filepath.Dir(anc)
		if !errors.Is(err, os.ErrNotExist) || up == anc {
			s.a.log.Debug("zap: cannot watch an ancestor of key directory", "dir", anc, "err", err)
			break
		}
		anc = up
	}
	ok := s.addWatch(s.dir)
	for _, d := range s.subdirs {
		s.addWatch(d)
	}
	s.setWatching(ok)
}

func (s *dirSource) addWatch(path string) bool {
	if err := s.w.Add(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.a.log.Debug("zap: cannot watch", "dir", path, "err", err)
		}
		return false
	}
	return true
}

func (s *dirSource) setWatching(ok bool) {
	s.mu.Lock()
	s.st.watching = ok
	s.mu.Unlock()
}

// rescan scans the directory and, on success, swaps the new set in. On failure the last
// good set stays and the error is recorded. It watches first: a file written during or
// after the scan then has an event, and a directory made after its watch failed has one
// in its parent or an ancestor.
func (s *dirSource) rescan(why string) error {
	res, err := s.scanWatched()
	if err != nil {
		s.mu.Lock()
		s.st.lastErr = err
		changed := s.errText != err.Error()
		s.errText = err.Error()
		s.mu.Unlock()
		if changed {
			s.a.log.Warn("zap: rescan failed; keeping the last good key set", "domain", s.domain, "dir", s.dir, "err", err)
		}
		return err
	}
	s.commit(res, why, true)
	return nil
}

// treeRounds bounds how many times scanWatched scans again for new subdirectories; a
// deeper tree made at once is complete by the periodic rescan.
const treeRounds = 8

// scanWatched watches, then scans: what is written after a watch has an event, what
// before is scanned. In a tree, the subdirectories a scan finds that are not yet watched
// are watched and the tree scanned again, until none is new (mkdir -p, a tree moved in).
func (s *dirSource) scanWatched() (scanResult, error) {
	s.syncWatches()
	res, err := scanDir(s.dir, s.layout)
	for i := 0; err == nil && i < treeRounds && newSubdirs(res.subdirs, s.subdirs); i++ {
		s.subdirs = res.subdirs
		s.syncWatches()
		res, err = scanDir(s.dir, s.layout)
	}
	return res, err
}

// newSubdirs reports whether found holds a directory that watched does not.
func newSubdirs(found, watched []string) bool {
	for _, d := range found {
		if !slices.Contains(watched, d) {
			return true
		}
	}
	return false
}

// commit makes res live: it swaps the set and records the state; with publish (the source
// is in the policy), it also revokes and starts a new generation.
func (s *dirSource) commit(res scanResult, why string, publish bool) {
	now := time.Now()
	old := s.set.Swap(res.set)
	s.subdirs = res.subdirs

	var b strings.Builder
	for _, fe := range res.bad {
		fmt.Fprintf(&b, "%s: %v\n", fe.name, fe.err)
	}
	s.mu.Lock()
	s.st = sourceState{
		lastReload: now,
		bad:        res.bad,
		files:      res.files,
		missing:    res.missing,
		watching:   s.st.watching,
	}
	badChanged := s.badText != b.String()
	s.badText, s.errText = b.String(), ""
	s.mu.Unlock()

	if badChanged {
		for _, fe := range res.bad {
			s.a.log.Warn("zap: skipping key file", "domain", s.domain, "dir", s.dir, "file", fe.name, "err", fe.err)
		}
	}
	added, removed := diff(old, res.set)
	level := "debug"
	if added+removed != 0 || old == nil {
		level = "info"
	}
	args := []any{"domain", s.domain, "dir", s.dir, "why", why, "keys", len(res.set.keys),
		"added", added, "removed", removed}
	if res.missing {
		args = append(args, "missing", true)
	}
	if level == "info" {
		s.a.log.Info("zap: key set loaded", args...)
	} else {
		s.a.log.Debug("zap: key set loaded", args...)
	}
	if publish {
		s.a.published(now)
	}
}

func diff(old, cur *keySet) (added, removed int) {
	if old == nil {
		return len(cur.keys), 0
	}
	for k := range cur.keys {
		if _, ok := old.keys[k]; !ok {
			added++
		}
	}
	for k := range old.keys {
		if _, ok := cur.keys[k]; !ok {
			removed++
		}
	}
	return added, removed
}

func (s *dirSource) state() sourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.bad = slices.Clone(st.bad)
	return st
}
