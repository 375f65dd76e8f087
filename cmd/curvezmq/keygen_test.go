package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvezmq/curvezmq/keystore"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := filepath.Join(t.TempDir(), "new", "keys") // created by keygen
	r := h.run("keygen", "--dir", dir, "alice")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%v", r)
	}
	pub, sec := filepath.Join(dir, "alice.key"), filepath.Join(dir, "alice.key_secret")
	check := func(printed string) (pubText, secText []byte) {
		t.Helper()
		pc, err := keystore.ReadCertificate(pub)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := keystore.ReadCertificate(sec)
		if err != nil {
			t.Fatal(err)
		}
		if pc.HasSecret || !sc.HasSecret || !sc.Public.Equal(pc.Public) {
			t.Errorf("public %v (secret %v), secret file's public %v", pc.Public, pc.HasSecret, sc.Public)
		}
		if printed != pc.Public.String()+"\n" {
			t.Errorf("printed %q, the file holds %s", printed, pc.Public)
		}
		for _, p := range []string{pub, sec} {
			if m := mode(t, p); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", p, m)
			}
		}
		pubText, _ = os.ReadFile(pub)
		secText, _ = os.ReadFile(sec)
		if !strings.Contains(string(pubText), "ZeroMQ CURVE Public Certificate") ||
			!strings.Contains(string(secText), "ZeroMQ CURVE **Secret** Certificate") {
			t.Errorf("not pyzmq's certificate text:\n%s\n%s", pubText, secText)
		}
		return pubText, secText
	}
	p1, s1 := check(r.stdout)
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("created directory mode %v, want 0700", m)
	}

	// No overwriting without --force, for either file.
	expect(t, h.run("keygen", "--dir", dir, "alice"), 1, "alice.key already exists (--force overwrites it)")
	if err := os.Remove(pub); err != nil {
		t.Fatal(err)
	}
	expect(t, h.run("keygen", "-dir", dir, "alice"), 1, "alice.key_secret already exists")
	if got, _ := os.ReadFile(sec); string(got) != string(s1) {
		t.Error("a refused keygen changed the secret file")
	}
	if err := os.WriteFile(pub, p1, 0o600); err != nil {
		t.Fatal(err)
	}

	// --force replaces both with a new pair.
	r = h.run("keygen", "-force", "-dir", dir, "alice")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if p2, _ := check(r.stdout); string(p2) == string(p1) {
		t.Error("--force kept the old key")
	}

	// The default directory is the current one.
	r = h.run("keygen", "bob")
	if _, err := os.Stat(filepath.Join(h.wd, "bob.key_secret")); r.code != 0 || err != nil {
		t.Fatalf("%v\n%v", r, err)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"keygen"}, "want one NAME, got 0 arguments"},
		{[]string{"keygen", "a", "b"}, "want one NAME, got 2 arguments"},
		{[]string{"keygen", "a/b"}, "not a plain file name"},
		{[]string{"keygen", ".hidden"}, `starts with "."`},
		{[]string{"keygen", "client.key"}, "without the suffix"},
		{[]string{"keygen", "--size", "1", "a"}, "flag provided but not defined: -size"},
		{[]string{"keygen", "--dir", filepath.Join(pub, "sub"), "a"}, "not a directory"},
	} {
		expect(t, h.run(c.args...), 1, c.msg)
	}
	if r := h.run("keygen", "-h"); r.code != 0 || r.stdout != keygenUsage {
		t.Errorf("%v", r)
	}
}
