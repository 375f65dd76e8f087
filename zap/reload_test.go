package zap

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/curvezmq/curvezmq/curve/key"
)

func configure(t testing.TB, a *Authenticator, dir string) {
	t.Helper()
	if err := a.ConfigureCurve("*", dir); err != nil {
		t.Fatal(err)
	}
}

func domainStats(t testing.TB, a *Authenticator, domain string) DomainStats {
	t.Helper()
	for _, d := range a.Stats().Domains {
		if d.Domain == domain {
			return d
		}
	}
	t.Fatalf("no domain %q in stats", domain)
	return DomainStats{}
}

// A key written into the watched directory is honoured, with no call.
func TestAddKey(t *testing.T) {
	dir := t.TempDir()
	a := newAuth(t, Config{})
	configure(t, a, dir)
	k := newKey(t)
	if r := a.Authorize(context.Background(), request("", k)); r.Status != 400 || r.StatusText != "Unknown key" {
		t.Fatalf("before: got %+v", r)
	}
	gen := a.Generation()
	writeKey(t, dir, "client_a.key", k)
	waitStatus(t, a, k, 200)
	if r := a.Authorize(context.Background(), request("", k)); r.UserID != k.String() {
		t.Errorf("user id %q, want the Z85 key", r.UserID)
	}
	if a.Generation() <= gen {
		t.Errorf("generation did not advance")
	}
	if st := a.Stats(); st.Keys != 1 || st.LastReload.IsZero() || !st.Domains[0].Watching {
		t.Errorf("stats: %+v", st)
	}
}

// A removed key is refused and the live connections authenticated with it are closed;
// other connections, and untracked ones, stay.
func TestRemoveKeyRevokes(t *testing.T) {
	dir := t.TempDir()
	ka, kb := newKey(t), newKey(t)
	pa := writeKey(t, dir, "client_a.key", ka)
	pb := writeKey(t, dir, "client_b.key", kb)
	a := New(Config{})
	defer a.Close()
	configure(t, a, dir)
	ca1, ca2, cb, cbGone := newConn(), newConn(), newConn(), newConn()
	a.Track(ka, ca1)
	a.Track(ka, ca2)
	a.Track(kb, cb)
	untrack := a.Track(kb, cbGone)
	if st := a.Stats(); st.Tracked != 4 {
		t.Fatalf("tracked %d, want 4", st.Tracked)
	}
	untrack()
	untrack() // idempotent

	if err := os.Remove(pa); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, ka, 400)
	waitClosed(t, ca1, "first connection of the removed key")
	waitClosed(t, ca2, "second connection of the removed key")
	if status(a, kb) != 200 {
		t.Fatal("the other key was refused")
	}

	// An untracked connection is not closed when its key goes.
	if err := os.Remove(pb); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, kb, 400)
	waitClosed(t, cb, "connection of the second removed key")
	a.Close() // waits for pending revocations
	if cbGone.isClosed() {
		t.Error("an untracked connection was closed")
	}
	if st := a.Stats(); st.Revoked != 3 || st.Tracked != 0 {
		t.Errorf("revoked %d tracked %d, want 3 and 0", st.Revoked, st.Tracked)
	}
}

// Replacing a key with another of the same size in the same second, with the same
// modification time, is seen (czmq#2113): by the watcher, and by a rescan alone.
func TestSameSizeReplacementSameSecond(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			dir := t.TempDir()
			a := newAuth(t, Config{noWatch: !watch})
			configure(t, a, dir)
			ka, kb := newKey(t), newKey(t)
			path := writeKey(t, dir, "client_x.key", ka)
			if !watch {
				if err := a.Reload(); err != nil {
					t.Fatal(err)
				}
			}
			waitStatus(t, a, ka, 200)
			c := newConn()
			a.Track(ka, c)

			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			writeKey(t, dir, "client_x.key", kb)
			if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
				t.Fatal(err)
			}
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
				t.Fatalf("setup: size %d→%d, mtime %v→%v; want both unchanged",
					before.Size(), after.Size(), before.ModTime(), after.ModTime())
			}
			if !watch {
				if err := a.Reload(); err != nil {
					t.Fatal(err)
				}
			}
			waitStatus(t, a, kb, 200)
			if got := status(a, ka); got != 400 {
				t.Errorf("old key: got %d, want 400", got)
			}
			waitClosed(t, c, "connection of the replaced key")
		})
	}
}

// Cylc's housekeeping removes the directory and makes it again: the old keys go, the new
// ones come, and the new directory is watched.
func TestDirectoryRecreated(t *testing.T) {
	t.Run("with its parent", func(t *testing.T) {
		// .service/client_public_keys, with .service removed and made again: seen from
		// the nearest existing ancestor, without the periodic rescan.
		srv := filepath.Join(t.TempDir(), ".service")
		dir := filepath.Join(srv, "client_public_keys")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		ka, kb, kc := newKey(t), newKey(t), newKey(t)
		writeKey(t, dir, "client_a.key", ka)
		a := newAuth(t, Config{RescanInterval: -1})
		configure(t, a, dir)
		if err := os.RemoveAll(srv); err != nil {
			t.Fatal(err)
		}
		waitFor(t, a, "the directory to be seen missing", func() bool { return domainStats(t, a, "*").Missing })
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeKey(t, dir, "client_b.key", kb)
		waitStatus(t, a, kb, 200)
		if status(a, ka) != 400 {
			t.Error("key of the removed directory still allowed")
		}
		writeKey(t, dir, "client_c.key", kc)
		waitStatus(t, a, kc, 200)
		if ds := domainStats(t, a, "*"); ds.Missing || !ds.Watching {
			t.Errorf("after re-creation: %+v", ds)
		}
	})
	t.Run("at once", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "client_public_keys")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		ka, kb, kc := newKey(t), newKey(t), newKey(t)
		writeKey(t, dir, "client_a.key", ka)
		a := newAuth(t, Config{})
		configure(t, a, dir)

		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeKey(t, dir, "client_b.key", kb)
		waitStatus(t, a, kb, 200)
		waitStatus(t, a, ka, 400)
		// Later changes are still seen: the new directory is watched.
		writeKey(t, dir, "client_c.key", kc)
		waitStatus(t, a, kc, 200)
	})
	t.Run("absent for a while", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "client_public_keys")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		ka, kb, kc := newKey(t), newKey(t), newKey(t)
		writeKey(t, dir, "client_a.key", ka)
		a := newAuth(t, Config{})
		configure(t, a, dir)
		c := newConn()
		a.Track(ka, c)

		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		// An absent directory is an empty set: its keys are revoked.
		waitFor(t, a, "the directory to be seen missing", func() bool { return domainStats(t, a, "*").Missing })
		if status(a, ka) != 400 {
			t.Error("key of a removed directory still allowed")
		}
		waitClosed(t, c, "connection of a key whose directory was removed")
		if ds := domainStats(t, a, "*"); ds.LastError != "" {
			t.Errorf("a missing directory reported as an error: %q", ds.LastError)
		}

		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeKey(t, dir, "client_b.key", kb)
		waitStatus(t, a, kb, 200)
		writeKey(t, dir, "client_c.key", kc)
		waitStatus(t, a, kc, 200)
		if ds := domainStats(t, a, "*"); ds.Missing || !ds.Watching {
			t.Errorf("after re-creation: %+v", ds)
		}
	})
}

// An unparsable file beside good ones: the good ones count, the bad one is reported.
func TestBadFileBesideGoodOnes(t *testing.T) {
	dir := t.TempDir()
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	writeKey(t, dir, "good1.key", k1)
	writeKey(t, dir, "good2.key", k2)
	for name, text := range map[string]string{
		"bad.key":   "this is not a certificate\n",
		"zero.key":  strings.Replace(certText(k1), k1.String(), strings.Repeat("0", 40), 1),
		"empty.key": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, Config{})
	configure(t, a, dir)
	for _, k := range []key.PublicKey{k1, k2} {
		if got := status(a, k); got != 200 {
			t.Errorf("good key %s: got %d", k.Short(), got)
		}
	}
	ds := domainStats(t, a, "*")
	if ds.Keys != 2 || ds.Files != 6 || ds.LastError != "" {
		t.Errorf("stats: %+v", ds)
	}
	var names []string
	for _, b := range ds.BadFiles {
		names = append(names, b[:strings.Index(b, ":")])
	}
	if want := []string{"adir.key", "bad.key", "empty.key", "zero.key"}; !slices.Equal(names, want) {
		t.Errorf("bad files %q, want %q", ds.BadFiles, want)
	}
	// A bad file arriving later does not hide a good one arriving with it.
	if err := os.WriteFile(filepath.Join(dir, "bad2.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeKey(t, dir, "good3.key", k3)
	waitStatus(t, a, k3, 200)
	waitFor(t, a, "bad2.key to be reported", func() bool {
		return slices.ContainsFunc(domainStats(t, a, "*").BadFiles, func(s string) bool { return strings.HasPrefix(s, "bad2.key:") })
	})
	if status(a, k1) != 200 || status(a, k2) != 200 {
		t.Error("good keys lost")
	}
}

// pyzmq's rule: *.key in the directory itself; no dotfiles, no secret files, nothing else.
func TestPyzmqLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret, err := key.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kHidden, kNotes, kSub, kGood := newKey(t), newKey(t), newKey(t), newKey(t)
	writeKey(t, dir, ".hidden.key", kHidden)
	writeKey(t, dir, "notes.txt", kNotes)
	writeKey(t, dir, "sub/inner.key", kSub)
	writeKey(t, dir, "server.key", kGood)
	secretText := strings.Replace(certText(secret.Public), "\"\n", "\"\n    secret-key = \""+secret.Secret.UnsafeZ85()+"\"\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "client.key_secret"), []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, Config{})
	configure(t, a, dir)
	for name, k := range map[string]key.PublicKey{"dotfile": kHidden, "not .key": kNotes, "subdirectory": kSub, "secret file": secret.Public} {
		if got := status(a, k); got != 400 {
			t.Errorf("%s: got %d, want 400", name, got)
		}
	}
	if got := status(a, kGood); got != 200 {
		t.Errorf("server.key: got %d, want 200", got)
	}
	if ds := domainStats(t, a, "*"); ds.Files != 1 || len(ds.BadFiles) != 0 {
		t.Errorf("stats: %+v", ds)
	}
}

// zauth's rule: the whole tree but dot entries and *_secret; metadata is returned; new
// subdirectories are watched.
func TestZauthLayout(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"sub", ".dot"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	kAlice, kBob, kSecret, kDot, kFrank, kGeorge := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	alice := strings.Replace(certText(kAlice), "metadata\n", "metadata\n    name = \"alice\"\n    User-Id = \"root\"\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "alice"), []byte(alice), 0o600); err != nil {
		t.Fatal(err)
	}
	writeKey(t, dir, "sub/bob", kBob)
	writeKey(t, dir, "carol_secret", kSecret)
	writeKey(t, dir, ".dot/dave", kDot)

	a := newAuth(t, Config{})
	if err := a.ConfigureCurveDir("", dir, LayoutZauth); err != nil {
		t.Fatal(err)
	}
	r := a.Authorize(context.Background(), request("", kAlice))
	if r.Status != 200 {
		t.Fatalf("alice: %+v", r)
	}
	if v, ok := r.Metadata.Get("name"); !ok || string(v) != "alice" {
		t.Errorf("alice's metadata: %+v, want name=alice", r.Metadata)
	}
	if _, ok := r.Metadata.Get("User-Id"); ok {
		t.Errorf("a certificate set User-Id: %+v", r.Metadata)
	}
	if got := status(a, kBob); got != 200 {
		t.Errorf("bob in a subdirectory: got %d", got)
	}
	for name, k := range map[string]key.PublicKey{"_secret": kSecret, "dot directory": kDot} {
		if got := status(a, k); got != 400 {
			t.Errorf("%s: got %d, want 400", name, got)
		}
	}
	if ds := domainStats(t, a, "*"); ds.Layout != "zauth" || ds.Files != 2 {
		t.Errorf("stats: %+v", ds)
	}
	// A subdirectory made later is watched.
	if err := os.Mkdir(filepath.Join(dir, "sub2"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKey(t, dir, "sub2/frank", kFrank)
	waitStatus(t, a, kFrank, 200)
	writeKey(t, dir, "sub2/george", kGeorge)
	waitStatus(t, a, kGeorge, 200)
}

func TestThousandFiles(t *testing.T) {
	const n = 1000
	keys := make([]key.PublicKey, n)
	for i := range keys {
		keys[i] = newKey(t)
	}
	t.Run("at start", func(t *testing.T) {
		dir := t.TempDir()
		for i, k := range keys {
			writeKey(t, dir, fmt.Sprintf("client_%04d.key", i), k)
		}
		a := newAuth(t, Config{})
		configure(t, a, dir)
		for i, k := range keys {
			if got := status(a, k); got != 200 {
				t.Fatalf("key %d: got %d", i, got)
			}
		}
		if st := a.Stats(); st.Keys != n {
			t.Errorf("keys %d, want %d", st.Keys, n)
		}
	})
	t.Run("added live", func(t *testing.T) {
		dir := t.TempDir()
		a := newAuth(t, Config{})
		configure(t, a, dir)
		for i, k := range keys {
			writeKey(t, dir, fmt.Sprintf("client_%04d.key", i), k)
		}
		waitFor(t, a, "1000 keys", func() bool { return a.Stats().Keys == n })
		for i, k := range keys {
			if got := status(a, k); got != 200 {
				t.Fatalf("key %d: got %d", i, got)
			}
		}
	})
}

// A rescan that cannot read the directory keeps the last good set and reports the error.
func TestRescanFailureKeepsLastGood(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ka, kb := newKey(t), newKey(t)
	writeKey(t, dir, "client_a.key", ka)
	a := newAuth(t, Config{noWatch: true})
	configure(t, a, dir)

	// A file where the directory was: reading it fails (as an I/O error would).
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	gen := a.Generation()
	err := a.Reload()
	if err == nil || !strings.HasPrefix(err.Error(), "zap: ") {
		t.Fatalf("Reload: got %v, want a zap error", err)
	}
	if status(a, ka) != 200 {
		t.Error("the last good set was dropped")
	}
	if a.Generation() != gen {
		t.Error("a failed rescan started a generation")
	}
	if st := a.Stats(); st.LastError == "" || st.Domains[0].LastError == "" {
		t.Errorf("error not reported: %+v", st)
	}

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeKey(t, dir, "client_b.key", kb)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if status(a, kb) != 200 || status(a, ka) != 400 {
		t.Error("the recovered directory was not loaded")
	}
	if st := a.Stats(); st.LastError != "" {
		t.Errorf("error still reported after recovery: %q", st.LastError)
	}
}

// A watcher overflow triggers a full rescan at once, without waiting for the debounce.
func TestOverflowRescans(t *testing.T) {
	dir := t.TempDir()
	a := newAuth(t, Config{Debounce: time.Hour})
	configure(t, a, dir)
	k := newKey(t)
	writeKey(t, dir, "client_a.key", k)
	src := a.policy.Load().domains["*"].src
	select {
	case src.w.Errors <- fsnotify.ErrEventOverflow:
	case <-time.After(waitTimeout):
		t.Fatal("the watcher loop did not take the overflow")
	}
	waitStatus(t, a, k, 200)
}

// Without events (NFS), the periodic rescan picks changes up.
func TestPeriodicRescan(t *testing.T) {
	dir := t.TempDir()
	a := newAuth(t, Config{noWatch: true, RescanInterval: 20 * time.Millisecond})
	configure(t, a, dir)
	if ds := domainStats(t, a, "*"); ds.Watching {
		t.Fatal("watching without a watcher")
	}
	k := newKey(t)
	writeKey(t, dir, "client_a.key", k)
	waitStatus(t, a, k, 200)
}

// The same key in two files: removing one keeps it, and its connection.
func TestDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	p1 := writeKey(t, dir, "one.key", k)
	writeKey(t, dir, "two.key", k)
	a := New(Config{noWatch: true})
	defer a.Close()
	configure(t, a, dir)
	c := newConn()
	a.Track(k, c)
	if err := os.Remove(p1); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if status(a, k) != 200 {
		t.Error("key lost with one of its two files")
	}
	a.Close()
	if c.isClosed() {
		t.Error("connection closed although its key is still allowed")
	}
}

func TestKeepRevoked(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	p := writeKey(t, dir, "client_a.key", k)
	a := New(Config{KeepRevoked: true, noWatch: true})
	defer a.Close()
	configure(t, a, dir)
	c := newConn()
	a.Track(k, c)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if status(a, k) != 400 {
		t.Fatal("removed key still allowed")
	}
	a.Close()
	if c.isClosed() {
		t.Error("connection closed with KeepRevoked")
	}
}

// A key revoked between its handshake and Track is closed at once.
func TestTrackAfterRevocation(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	p := writeKey(t, dir, "client_a.key", k)
	a := newAuth(t, Config{noWatch: true})
	configure(t, a, dir)
	if status(a, k) != 200 {
		t.Fatal("key not allowed")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	c := newConn()
	a.Track(k, c)
	waitClosed(t, c, "connection tracked after its key was revoked")
	if st := a.Stats(); st.Tracked != 0 {
		t.Errorf("tracked %d, want 0", st.Tracked)
	}
}

// Reconfiguring a domain revokes what the new policy leaves out; configuring the same
// directory again only rescans it.
func TestReconfigure(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	writeKey(t, dir1, "a.key", ka)
	writeKey(t, dir2, "b.key", kb)
	a := newAuth(t, Config{noWatch: true})
	configure(t, a, dir1)
	src := a.policy.Load().domains["*"].src

	writeKey(t, dir1, "c.key", kc)
	configure(t, a, dir1) // as Cylc does after each remote-init
	if a.policy.Load().domains["*"].src != src {
		t.Error("configuring the same directory replaced its watcher")
	}
	if status(a, kc) != 200 {
		t.Error("configuring the same directory again did not rescan it")
	}

	c := newConn()
	a.Track(ka, c)
	configure(t, a, dir2)
	waitClosed(t, c, "connection of a key the new directory lacks")
	if status(a, ka) != 400 || status(a, kb) != 200 {
		t.Error("new directory not in force")
	}
	// Allow-any admits every key: nothing to revoke.
	c2 := newConn()
	a.Track(kb, c2)
	if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if c2.isClosed() {
		t.Error("allow-any revoked a connection")
	}
}
