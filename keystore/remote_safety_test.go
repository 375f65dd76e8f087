package keystore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// TestInstallClientKeyRefusesHiddenSecret: a remote-init reply that carries the secret key
// outside the curve section is refused, not stored in client_public_keys: pyzmq's
// load_certificate (which Cylc uses) ignores sections and would read that secret-key line.
func TestInstallClientKeyRefusesHiddenSecret(t *testing.T) {
	kp, err := key.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sec := SecretCertificate(&kp, time.Now())
	// Move the curve section's secret-key line into a section of its own, and into metadata.
	var secLine string
	for _, l := range strings.Split(string(sec), "\n") {
		if strings.Contains(l, "secret-key") {
			secLine = l
		}
	}
	pub := string(PublicCertificate(kp.Public, time.Now()))
	for name, cert := range map[string]string{
		"other section": pub + "extra\n" + secLine + "\n",
		"metadata":      strings.Replace(pub, "metadata\n", "metadata\n"+secLine+"\n", 1),
	} {
		srv := t.TempDir()
		err := InstallClientKey(srv, "hpc", []byte(cert))
		if err == nil {
			got, _ := os.ReadFile(filepath.Join(srv, ClientPublicKeysDirName, "client_hpc.key"))
			t.Errorf("%s: a certificate carrying the secret-key was accepted and stored (%d bytes, secret-key line present: %v)",
				name, len(got), strings.Contains(string(got), "secret-key"))
		}
	}
}

// TestInstallClientKeyRefusesSecondPublicKey: pyzmq takes the last public-key line wherever
// it is, we take the curve section's: a certificate with another public-key elsewhere
// would allow different keys to the two readers, so it is refused.
func TestInstallClientKeyRefusesSecondPublicKey(t *testing.T) {
	a, _ := key.GenerateKeyPair(nil)
	b, _ := key.GenerateKeyPair(nil)
	cert := string(PublicCertificate(a.Public, time.Now())) + "extra\n    public-key = \"" + b.Public.String() + "\"\n"
	srv := t.TempDir()
	if err := InstallClientKey(srv, "hpc", []byte(cert)); err == nil {
		t.Errorf("two public-keys (curve %s, other section %s) accepted", a.Public.Short(), b.Public.Short())
	}
	if err := InstallClientKey(srv, "hpc", PublicCertificate(a.Public, time.Now())); err != nil {
		t.Errorf("a plain public certificate: %v", err)
	}
}

// TestRemoteTidyServiceSymlink: remote-tidy refuses a .service that is a symbolic link: it
// neither removes the contact file and keys of the directory it points to nor the link.
func TestRemoteTidyServiceSymlink(t *testing.T) {
	elsewhere := t.TempDir() // another directory, e.g. another run's .service
	for _, n := range []string{ContactFileName, ClientSecretKeyFile, "client_hpc.key", ServerPublicKeyFile, "keepme"} {
		if err := os.WriteFile(filepath.Join(elsewhere, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runDir := t.TempDir()
	srv := ServiceDir(runDir)
	if err := os.Symlink(elsewhere, srv); err != nil {
		t.Fatal(err)
	}
	err := RemoteTidy(srv, "hpc")
	var gone []string
	for _, n := range []string{ContactFileName, ClientSecretKeyFile, "client_hpc.key", ServerPublicKeyFile} {
		if _, serr := os.Lstat(filepath.Join(elsewhere, n)); serr != nil {
			gone = append(gone, n)
		}
	}
	_, lerr := os.Lstat(srv)
	if err == nil || len(gone) > 0 || lerr != nil {
		t.Errorf("RemoteTidy through symlink .service -> %s: %v; removed there %v; symlink itself removed: %v", elsewhere, err, gone, lerr != nil)
	}
}

// TestRemoteTidySchedulerDirRefused: remote-tidy run on a scheduler's own run directory
// (client_public_keys present) removes nothing, as remote-init refuses it (guard A).
func TestRemoteTidySchedulerDirRefused(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	l, err := LockService(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	kp, err := CreateServerKeys(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp.Wipe()
	if err := WriteContact(srv, Contact{ContactHost: "localhost", ContactPort: "43001"}); err != nil {
		t.Fatal(err)
	}
	err = RemoteTidy(srv, "hpc")
	var gone []string
	for _, n := range []string{ContactFileName, ClientSecretKeyFile, ServerPublicKeyFile} {
		if _, serr := os.Stat(filepath.Join(srv, n)); serr != nil {
			gone = append(gone, n)
		}
	}
	if err == nil || len(gone) > 0 {
		t.Errorf("RemoteTidy on a live scheduler's .service (locked, with client_public_keys) returned %v and removed %v", err, gone)
	}
}
