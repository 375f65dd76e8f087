package keystore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

func TestValidTarget(t *testing.T) {
	for _, ok := range []string{"hpc", "HPC-2", "a.b_c-d", "localhost", "x", "a-", strings.Repeat("a", 200), "..."} {
		if err := ValidTarget(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "a\nb", "$HOME", "é", "a;b", "-", "-hpc", strings.Repeat("a", 201)} {
		if err := ValidTarget(bad); !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("%q: got %v, want ErrInvalidTarget", bad, err)
		}
	}
}

func TestServiceDir(t *testing.T) {
	if got := ServiceDir("/home/me/cylc-run/flow/run1"); got != "/home/me/cylc-run/flow/run1/.service" {
		t.Fatal(got)
	}
	if ClientKeyFile("hpc") != "client_hpc.key" {
		t.Fatal(ClientKeyFile("hpc"))
	}
}

// The scheduler side from start to shutdown: Cylc's files, names, copies and modes.
func TestSchedulerLifecycle(t *testing.T) {
	srv := ServiceDir(filepath.Join(t.TempDir(), "cylc-run", "flow", "run1"))
	kp, err := CreateServerKeys(srv, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, srv, 0o700)
	cpk := filepath.Join(srv, ClientPublicKeysDirName)
	checkMode(t, cpk, 0o700)
	files := map[string][]byte{}
	for _, f := range []string{ServerPublicKeyFile, ServerSecretKeyFile, ClientSecretKeyFile, filepath.Join(ClientPublicKeysDirName, "client_localhost.key")} {
		p := filepath.Join(srv, f)
		checkMode(t, p, 0o600)
		files[f] = readFile(t, p)
	}
	if !bytes.Equal(files[ClientSecretKeyFile], files[ServerSecretKeyFile]) {
		t.Error("client.key_secret is not a copy of server.key_secret")
	}
	if !bytes.Equal(files[filepath.Join(ClientPublicKeysDirName, "client_localhost.key")], files[ServerPublicKeyFile]) {
		t.Error("client_localhost.key is not a copy of server.key")
	}
	client, server, err := LoadClientKeys(srv)
	if err != nil {
		t.Fatal(err)
	}
	if client.Public != kp.Public || server != kp.Public || *client.Secret.UnsafeBytes() != *kp.Secret.UnsafeBytes() {
		t.Fatal("local client keys are not the server's key pair")
	}

	// A remote target's public certificate goes into the allow-list verbatim.
	remote := ServiceDir(filepath.Join(t.TempDir(), "remote"))
	cert, err := CreateClientKeys(remote, "hpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := InstallClientKey(srv, "hpc", cert); err != nil {
		t.Fatal(err)
	}
	hpcPath := filepath.Join(cpk, "client_hpc.key")
	checkMode(t, hpcPath, 0o600)
	if !bytes.Equal(readFile(t, hpcPath), cert) {
		t.Fatal("installed key is not the received text")
	}
	keys, err := ReadPublicKeys(cpk)
	if err != nil || len(keys) != 2 || keys[0].Name != "client_hpc.key" || keys[1].Name != "client_localhost.key" || keys[1].Public != kp.Public {
		t.Fatalf("allow-list %+v %v", keys, err)
	}
	// Replacing it (a reload re-runs remote-init) rewrites the file.
	cert2, err := CreateClientKeys(remote, "hpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := InstallClientKey(srv, "hpc", cert2); err != nil || !bytes.Equal(readFile(t, hpcPath), cert2) {
		t.Fatalf("reinstall: %v", err)
	}
	if err := RemoveClientKey(srv, "hpc"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hpcPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("RemoveClientKey left the file")
	}
	if err := RemoveClientKey(srv, "hpc"); err != nil {
		t.Fatalf("removing a missing key: %v", err)
	}
	if err := RemoveClientKey(srv, "../x"); !errors.Is(err, ErrInvalidTarget) {
		t.Fatalf("bad target: %v", err)
	}

	// Shutdown: keys go, the contact file and other .service content stay.
	if err := WriteContact(srv, Contact{ContactHost: "localhost", ContactPort: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, ".server.key.tmp42"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(srv, "etc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := RemoveServerKeys(srv); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(srv)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "contact etc" {
		t.Fatalf("after shutdown cleanup: %q", left)
	}
	if err := KeyHousekeeping(srv); err != nil {
		t.Fatalf("housekeeping twice: %v", err)
	}
	if err := KeyHousekeeping(filepath.Join(t.TempDir(), "nothing", ".service")); err != nil {
		t.Fatalf("housekeeping of a missing dir: %v", err)
	}
}

// Housekeeping discards every key of a previous run, including client_public_keys/.
func TestKeyHousekeeping(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	if _, err := CreateServerKeys(srv, nil); err != nil {
		t.Fatal(err)
	}
	cert, err := CreateClientKeys(ServiceDir(t.TempDir()), "hpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := InstallClientKey(srv, "hpc", cert); err != nil {
		t.Fatal(err)
	}
	if err := KeyHousekeeping(srv); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(srv); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
	// A second run makes new keys in the same directory.
	kp1, err := CreateServerKeys(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := KeyHousekeeping(srv); err != nil {
		t.Fatal(err)
	}
	kp2, err := CreateServerKeys(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kp1.Public == kp2.Public {
		t.Fatal("same key twice")
	}
}

func TestInstallClientKeyRejects(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	if _, err := CreateServerKeys(srv, nil); err != nil {
		t.Fatal(err)
	}
	kp := mustPair(t, clientSecretZ85)
	now := time.Now()
	var zero key.PublicKey
	for name, tc := range map[string]struct {
		target string
		cert   []byte
		want   error
	}{
		"secret":    {"hpc", SecretCertificate(&kp, now), ErrHasSecret},
		"garbage":   {"hpc", []byte("REMOTE INIT FAILED\n"), ErrNoPublicKey},
		"empty":     {"hpc", nil, ErrEmpty},
		"zero key":  {"hpc", PublicCertificate(zero, now), ErrInvalidKey},
		"bad name":  {"../../etc", PublicCertificate(kp.Public, now), ErrInvalidTarget},
		"bad name2": {"a b", PublicCertificate(kp.Public, now), ErrInvalidTarget},
		"localhost": {"localhost", PublicCertificate(kp.Public, now), ErrInvalidTarget},
	} {
		t.Run(name, func(t *testing.T) {
			err := InstallClientKey(srv, tc.target, tc.cert)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), clientSecretZ85) {
				t.Fatal("error carries the secret")
			}
			if _, err := os.Stat(filepath.Join(srv, ClientPublicKeysDirName, "client_hpc.key")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("a rejected key was written")
			}
		})
	}
}

// The remote side: files, the returned text, replacement, and removal.
func TestRemoteLifecycle(t *testing.T) {
	srv := ServiceDir(filepath.Join(t.TempDir(), "cylc-run", "flow"))
	cert, err := CreateClientKeys(srv, "hpc", &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, srv, 0o700)
	pubPath := filepath.Join(srv, "client_hpc.key")
	secPath := filepath.Join(srv, ClientSecretKeyFile)
	checkMode(t, pubPath, 0o600)
	checkMode(t, secPath, 0o600)
	if !bytes.Equal(readFile(t, pubPath), cert) {
		t.Fatal("returned text is not the file")
	}
	if _, err := os.Stat(filepath.Join(srv, "client.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("client.key exists: the remote's public key is client_<target>.key")
	}
	pc, err := ParseCertificate("cert", cert)
	if err != nil || pc.HasSecret {
		t.Fatalf("returned certificate: %v", err)
	}
	sc, err := ReadCertificate(secPath)
	if err != nil || sc.Public != pc.Public || !sc.HasSecret {
		t.Fatalf("client.key_secret: %v", err)
	}
	if l1, l2 := bytes.SplitN(cert, []byte("\n"), 2)[0], bytes.SplitN(readFile(t, secPath), []byte("\n"), 2)[0]; !bytes.Equal(l1, l2) {
		t.Error("the two files have different timestamps")
	}
	// Again (a reload, a restart): the old keys are replaced, no guard fires, and a
	// temporary file left by a killed writer goes.
	if err := os.WriteFile(filepath.Join(srv, ".client_hpc.key.tmp7"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert2, err := CreateClientKeys(srv, "hpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert, cert2) {
		t.Fatal("no new key")
	}
	if _, err := os.Stat(filepath.Join(srv, ".client_hpc.key.tmp7")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("stale temporary file kept")
	}
	// File install brings server.key; the contact file comes with remote-init.
	if err := os.WriteFile(filepath.Join(srv, ServerPublicKeyFile), PublicCertificate(mustPublic(t, serverPublicZ85), time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, server, err := LoadClientKeys(srv); err != nil || server != mustPublic(t, serverPublicZ85) {
		t.Fatalf("a job on the remote loads: %v", err)
	}
	if err := RemoveClientKeys(srv, "hpc", false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pubPath, secPath} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s kept", f)
		}
	}
	if _, err := os.Stat(filepath.Join(srv, ServerPublicKeyFile)); err != nil {
		t.Error("server.key removed without fullClean")
	}
	if err := RemoveClientKeys(srv, "hpc", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(srv, ServerPublicKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("server.key kept with fullClean")
	}
	if err := RemoveClientKeys(srv, "", true); !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("empty target: %v", err)
	}
}

func TestRemoteTidy(t *testing.T) {
	for _, withEtc := range []bool{false, true} {
		srv := ServiceDir(t.TempDir())
		if _, err := CreateClientKeys(srv, "hpc", nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{ServerPublicKeyFile, ContactFileName, ".contact.tmp99"} {
			if err := os.WriteFile(filepath.Join(srv, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if withEtc {
			if err := os.MkdirAll(filepath.Join(srv, "etc"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := RemoteTidy(srv, "hpc"); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(srv)
		switch {
		case !withEtc && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("empty .service kept: %v", entries)
		case withEtc && (len(entries) != 1 || entries[0].Name() != "etc"):
			t.Errorf("left %v (%v)", entries, err)
		}
		if err := RemoteTidy(srv, "hpc"); err != nil {
			t.Errorf("tidy twice: %v", err)
		}
	}
}

// Guard A and guard B, with Cylc's exact messages, and our exact-match decision on B.
func TestRemoteInitGuards(t *testing.T) {
	hint := " Check global.cylc install target is configured correctly for this platform."
	for name, tc := range map[string]struct {
		target  string
		present []string // files; a trailing "/" makes a directory
		msg     string   // "" means accepted
	}{
		"scheduler dir": {"hpc", []string{"client_public_keys/"}, "Unexpected key directory exists: {srv}/client_public_keys" + hint},
		"foreign key":   {"test_install_target", []string{"client_wrong.key"}, "Unexpected authentication key 'client_wrong.key' exists." + hint},
		"own key":       {"hpc", []string{"client_hpc.key", "client.key_secret", "server.key", "contact"}, ""},
		// Cylc accepts this one (the name contains "hpc"); we refuse it.
		"substring quirk": {"hpc", []string{"client_hpc2.key"}, "Unexpected authentication key 'client_hpc2.key' exists." + hint},
		"other way":       {"hpc2", []string{"client_hpc.key"}, "Unexpected authentication key 'client_hpc.key' exists." + hint},
		"bare pattern":    {"hpc", []string{"client_key"}, "Unexpected authentication key 'client_key' exists." + hint},
		"directory":       {"hpc", []string{"client_x.key/"}, "Unexpected authentication key 'client_x.key' exists." + hint},
		"first by name":   {"hpc", []string{"client_b.key", "client_a.key"}, "Unexpected authentication key 'client_a.key' exists." + hint},
		// Not matching ^client_\S*key$: accepted.
		"secret suffix": {"hpc", []string{"client_other.key_secret"}, ""},
		"no underscore": {"hpc", []string{"client.key"}, ""},
		"temp file":     {"hpc", []string{".client_other.key.tmp5"}, ""},
		"space in name": {"hpc", []string{"client_a b.key"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			srv := ServiceDir(t.TempDir())
			if err := os.Mkdir(srv, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.present {
				var err error
				if strings.HasSuffix(p, "/") {
					err = os.Mkdir(filepath.Join(srv, p), 0o700)
				} else {
					err = os.WriteFile(filepath.Join(srv, p), []byte("x"), 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, srv)
			_, err := CreateClientKeys(srv, tc.target, nil)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ge *GuardError
			if !errors.As(err, &ge) {
				t.Fatalf("got %v, want a *GuardError", err)
			}
			if want := strings.ReplaceAll(tc.msg, "{srv}", srv); ge.Msg != want {
				t.Fatalf("message\n%q\nwant\n%q", ge.Msg, want)
			}
			if d := diffSnapshots(before, snapshot(t, srv)); d != "" {
				t.Fatalf("a refused remote-init changed .service: %s", d)
			}
		})
	}
}

func TestLoadClientKeysErrors(t *testing.T) {
	dir := t.TempDir()
	check := func(wantOuter, wantInner error) {
		t.Helper()
		_, _, err := LoadClientKeys(dir)
		if !errors.Is(err, wantOuter) || !errors.Is(err, wantInner) {
			t.Fatalf("got %v, want %v and %v", err, wantOuter, wantInner)
		}
		if !strings.HasPrefix(err.Error(), wantOuter.Error()+": ") || strings.Count(err.Error(), "keystore: ") != 1 {
			t.Fatalf("message %q", err)
		}
		t.Log(err)
	}
	check(ErrNoClientKey, fs.ErrNotExist)
	kp := mustPair(t, clientSecretZ85)
	now := time.Now()
	if err := WriteFileAtomic(filepath.Join(dir, ClientSecretKeyFile), PublicCertificate(kp.Public, now), 0o600); err != nil {
		t.Fatal(err)
	}
	check(ErrNoClientKey, ErrNoSecret)
	if err := WriteFileAtomic(filepath.Join(dir, ClientSecretKeyFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check(ErrNoClientKey, ErrNoPublicKey)
	if err := WriteFileAtomic(filepath.Join(dir, ClientSecretKeyFile), SecretCertificate(&kp, now), 0o600); err != nil {
		t.Fatal(err)
	}
	check(ErrNoServerKey, fs.ErrNotExist)
	if err := WriteFileAtomic(filepath.Join(dir, ServerPublicKeyFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check(ErrNoServerKey, ErrEmpty)
	if MsgNoClientKey != "Failed to find user's private key, so cannot connect." ||
		MsgNoServerKey != "Failed to load the workflow's public key, so cannot connect." {
		t.Fatal("Cylc's messages changed")
	}
}
