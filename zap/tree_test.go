package zap

import (
	"os"
	"path/filepath"
	"testing"
)

// Trees (LayoutZauth) whose subdirectories come at once, a key directory reached through a
// symlink, and the generation's promise across a reconfiguration.

// TestZauthTreeMovedIn: a tree moved into the key directory has its nested subdirectories
// watched by the rescan that finds them: a key written in one afterwards is seen.
func TestZauthTreeMovedIn(t *testing.T) {
	dir, staging := t.TempDir(), t.TempDir()
	a := newAuth(t, Config{RescanInterval: -1})
	if err := a.ConfigureCurveDir("", dir, LayoutZauth); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(staging, "sub", "inner"), 0o700); err != nil {
		t.Fatal(err)
	}
	k0, k1 := newKey(t), newKey(t)
	writeKey(t, staging, "sub/inner/first", k0)
	if err := os.Rename(filepath.Join(staging, "sub"), filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, k0, 200)
	writeKey(t, dir, "sub/inner/second", k1)
	waitStatus(t, a, k1, 200)
}

// TestZauthMkdirP: subdirectories made with mkdir -p faster than the watcher reacts are
// all watched: keys written in the deepest are seen (ten times over, as it is a race).
func TestZauthMkdirP(t *testing.T) {
	for range 10 {
		dir := t.TempDir()
		a := newAuth(t, Config{RescanInterval: -1})
		if err := a.ConfigureCurveDir("", dir, LayoutZauth); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o700); err != nil {
			t.Fatal(err)
		}
		k0, k1 := newKey(t), newKey(t)
		writeKey(t, dir, "a/b/c/first", k0)
		waitStatus(t, a, k0, 200)
		writeKey(t, dir, "a/b/c/second", k1)
		waitStatus(t, a, k1, 200)
		a.Close()
	}
}

// TestZauthSymlinkedDirectory: a key directory that is a symlink is followed in both
// layouts (a walk does not follow a symlink at its root by itself).
func TestZauthSymlinkedDirectory(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "certs")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	writeKey(t, real, "alice.key", k)
	for _, layout := range []Layout{LayoutPyzmq, LayoutZauth} {
		a := newAuth(t, Config{RescanInterval: -1})
		if err := a.ConfigureCurveDir("", link, layout); err != nil {
			t.Fatal(err)
		}
		if got := status(a, k); got != 200 {
			t.Errorf("%v layout through a symlink: %d, want 200 (%+v)", layout, got, domainStats(t, a, "*"))
		}
	}
}

// TestReconfigureGeneration: when a domain moves to another directory, Reloaded fires and
// Generation advances only once the new directory's keys decide.
func TestReconfigureGeneration(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	k := newKey(t)
	writeKey(t, dirB, "client_b.key", k)
	for i := range 100 {
		a := New(Config{RescanInterval: -1})
		if err := a.ConfigureCurve("*", dirA); err != nil {
			t.Fatal(err)
		}
		ch, gen0 := a.Reloaded(), a.Generation()
		got := make(chan int, 1)
		go func() {
			<-ch
			if a.Generation() > gen0 {
				got <- status(a, k)
			} else {
				got <- -1
			}
		}()
		if err := a.ConfigureCurve("*", dirB); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != 200 {
			t.Fatalf("run %d: Reloaded fired with the new directory's key at status %d", i, s)
		}
		a.Close()
	}
}
