package keystore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

func init() {
	helpers["crash-writer"] = helperCrashWriter
	helpers["umask"] = helperUmask
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.key")
	for i, perm := range []os.FileMode{0o600, 0o640, 0o600, 0o400} {
		data := []byte(fmt.Sprintf("content %d\n", i))
		if err := WriteFileAtomic(p, data, perm); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p); string(got) != string(data) {
			t.Fatalf("content %q, want %q", got, data)
		}
		checkMode(t, p, perm)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}
}

// A failed write leaves the old file and no temporary file.
func TestWriteFileAtomicFailure(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Renaming a file over a non-empty directory fails.
	err := WriteFileAtomic(target, []byte("data"), 0o600)
	if err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != target {
		t.Fatalf("error %#v does not name %s", err, target)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "sub" {
		t.Fatalf("leftovers: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	for _, bad := range []string{dir + "/", "."} {
		if err := WriteFileAtomic(bad, nil, 0o600); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".server.key.tmp123":            true,
		".client_hpc.key.tmp4294967295": true,
		".contact.tmp1":                 true,
		"server.key.tmp123":             false,
		".server.key.tmp":               false,
		".server.key.tmp12a":            false,
		".tmp123":                       false,
		".server.key":                   false,
		"client_hpc.key":                false,
	} {
		if got := isTempName(name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
	// The name os.CreateTemp gives our pattern is one isTempName recognises and pyzmq's
	// "*.key" glob never matches.
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, ".server.key"+tempInfix+"*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !isTempName(filepath.Base(f.Name())) {
		t.Errorf("CreateTemp name %q not recognised", f.Name())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.key")); len(m) != 0 {
		t.Errorf("glob *.key matched %q", m)
	}
}

// helperCrashWriter writes two alternating certificates to $KEYSTORE_CRASH_PATH forever,
// printing one byte after each complete write, until it is killed.
func helperCrashWriter() error {
	path := os.Getenv("KEYSTORE_CRASH_PATH")
	certs, err := crashCerts()
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; i < 10_000_000; i++ {
		if err := WriteFileAtomic(path, certs[i%2], 0o600); err != nil {
			return err
		}
		out.WriteByte('.')
		out.Flush()
	}
	return errors.New("not killed")
}

func crashCerts() ([2][]byte, error) {
	var out [2][]byte
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i, s := range []string{clientSecretZ85, serverSecretZ85} {
		sk, err := key.ParseSecretKey([]byte(s))
		if err != nil {
			return out, err
		}
		kp := key.NewKeyPair(sk)
		out[i] = SecretCertificate(&kp, now)
	}
	return out, nil
}

// A child writing key files in a loop is SIGKILLed at random moments; after every kill the
// file parses completely as one of the two versions, never partial or empty, and no
// temporary file is visible to pyzmq's glob. Housekeeping then removes the leftovers.
func TestAtomicWriteSurvivesSIGKILL(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 20
	}
	dir := t.TempDir()
	path := filepath.Join(dir, ServerSecretKeyFile)
	certs, err := crashCerts()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, certs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	want := [2]key.PublicKey{mustPublic(t, clientPublicZ85), mustPublic(t, serverPublicZ85)}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var seen [2]int
	for i := 0; i < kills; i++ {
		cmd := helperCmd(t, "crash-writer", "KEYSTORE_CRASH_PATH="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it complete 1 to 8 writes, then kill it wherever it is in the next one.
		n := 1 + rng.IntN(8)
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadFull(stdout, make([]byte, n))
			done <- err
		}()
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			err = errors.New("no progress within 60s")
		}
		cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		if err != nil {
			t.Fatalf("kill %d: waiting for %d writes: %v (exit: %v)", i, n, err, werr)
		}
		c, err := ReadCertificate(path)
		if err != nil {
			t.Fatalf("kill %d: the file does not parse: %v", i, err)
		}
		switch c.Public {
		case want[0]:
			seen[0]++
		case want[1]:
			seen[1]++
		default:
			t.Fatalf("kill %d: unexpected key", i)
		}
		if !c.HasSecret {
			t.Fatalf("kill %d: secret lost", i)
		}
		// pyzmq's glob (no dotfiles) and ReadPublicKeys never see a temporary file.
		if files, err := ReadPublicKeys(dir); len(files) != 0 || err != nil {
			t.Fatalf("kill %d: ReadPublicKeys sees %v, %v", i, files, err)
		}
	}
	t.Logf("after %d kills: old/new versions seen %v", kills, seen)
	entries, _ := os.ReadDir(dir)
	var temps int
	for _, e := range entries {
		switch {
		case e.Name() == ServerSecretKeyFile:
		case isTempName(e.Name()) && strings.HasPrefix(e.Name(), "."+ServerSecretKeyFile+tempInfix):
			temps++
		default:
			t.Errorf("unexpected file %q", e.Name())
		}
	}
	t.Logf("%d temporary files left by killed writers", temps)
	if err := KeyHousekeeping(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("housekeeping left %v", entries)
	}
}

// helperUmask sets the umask given in $KEYSTORE_UMASK (this is a child process: the
// umask is process-wide, which is why the package never touches it) and creates every
// kind of file under $KEYSTORE_DIR.
func helperUmask() error {
	m, err := strconv.ParseUint(os.Getenv("KEYSTORE_UMASK"), 8, 32)
	if err != nil {
		return err
	}
	syscall.Umask(int(m))
	dir := os.Getenv("KEYSTORE_DIR")
	srv := ServiceDir(filepath.Join(dir, "sched"))
	if _, err := CreateServerKeys(srv, nil); err != nil {
		return err
	}
	remote := ServiceDir(filepath.Join(dir, "remote"))
	cert, err := CreateClientKeys(remote, "hpc", nil)
	if err != nil {
		return err
	}
	if err := InstallClientKey(srv, "hpc", cert); err != nil {
		return err
	}
	if err := WriteContact(srv, Contact{ContactHost: "localhost", ContactPort: "1"}); err != nil {
		return err
	}
	_, _, err = CreateCertificates(dir, "plain", nil)
	return err
}

// Every key file is 0600 and every directory we create 0700, whatever the umask.
func TestModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []string{"000", "022", "077", "777"} {
		t.Run(umask, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"sched", "remote"} {
				if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cmd := helperCmd(t, "umask", "KEYSTORE_UMASK="+umask, "KEYSTORE_DIR="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			srv := ServiceDir(filepath.Join(dir, "sched"))
			remote := ServiceDir(filepath.Join(dir, "remote"))
			checkMode(t, srv, 0o700)
			checkMode(t, filepath.Join(srv, ClientPublicKeysDirName), 0o700)
			checkMode(t, remote, 0o700)
			for _, f := range []string{
				filepath.Join(srv, ServerPublicKeyFile),
				filepath.Join(srv, ServerSecretKeyFile),
				filepath.Join(srv, ClientSecretKeyFile),
				filepath.Join(srv, ClientPublicKeysDirName, "client_localhost.key"),
				filepath.Join(srv, ClientPublicKeysDirName, "client_hpc.key"),
				filepath.Join(srv, ContactFileName),
				filepath.Join(remote, ClientSecretKeyFile),
				filepath.Join(remote, "client_hpc.key"),
				filepath.Join(dir, "plain.key"),
				filepath.Join(dir, "plain.key_secret"),
			} {
				checkMode(t, f, 0o600)
			}
		})
	}
}
