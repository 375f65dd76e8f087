package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

func init() { helpers["readonly"] = helperReadOnly }

// helperReadOnly runs in a private mount namespace (so nothing leaks to the host's
// mounts), bind-mounts $KEYSTORE_DIR read-only over itself and checks that every write
// fails cleanly, changing nothing, and that reads still work. As root, permission bits do
// not stop writes; a read-only mount does.
func helperReadOnly() error {
	dir := os.Getenv("KEYSTORE_DIR")
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("read-only remount: %w", err)
	}
	srv := ServiceDir(filepath.Join(dir, "sched"))
	remote := ServiceDir(filepath.Join(dir, "remote"))
	pub, err := key.ParsePublicKey([]byte(clientPublicZ85))
	if err != nil {
		return err
	}
	cert := PublicCertificate(pub, time.Now())
	var errs []error
	expectROFS := func(what string, err error) {
		if !errors.Is(err, syscall.EROFS) {
			errs = append(errs, fmt.Errorf("%s: got %v, want EROFS", what, err))
		}
	}
	expectROFS("WriteFileAtomic", WriteFileAtomic(filepath.Join(srv, ServerPublicKeyFile), cert, 0o600))
	_, err = CreateServerKeys(srv, nil)
	expectROFS("CreateServerKeys", err)
	expectROFS("KeyHousekeeping", KeyHousekeeping(srv))
	expectROFS("InstallClientKey", InstallClientKey(srv, "hpc2", cert))
	expectROFS("RemoveClientKey", RemoveClientKey(srv, "localhost"))
	expectROFS("WriteContact", WriteContact(srv, Contact{ContactHost: "h", ContactPort: "1"}))
	_, err = CreateClientKeys(remote, "hpc", nil)
	expectROFS("CreateClientKeys", err)
	var ge *GuardError
	if errors.As(err, &ge) {
		errs = append(errs, errors.New("CreateClientKeys: a filesystem error reported as a guard refusal"))
	}
	expectROFS("RemoteTidy", RemoteTidy(remote, "hpc"))
	_, _, err = CreateCertificates(dir, "x", nil)
	expectROFS("CreateCertificates", err)
	_, err = LockService(filepath.Join(dir, "new", ServiceDirName))
	expectROFS("LockService of a new dir", err)
	// Reading still works, and locking an existing directory does too.
	if _, _, err := LoadClientKeys(srv); err != nil {
		errs = append(errs, fmt.Errorf("LoadClientKeys: %w", err))
	}
	if _, err := ReadContact(srv); err != nil {
		errs = append(errs, fmt.Errorf("ReadContact: %w", err))
	}
	if l, err := LockService(srv); err != nil {
		errs = append(errs, fmt.Errorf("LockService: %w", err))
	} else {
		l.Unlock()
	}
	return errors.Join(errs...)
}

// TestReadOnlyBindMount covers permission-denied paths in a way that works as root: a child
// process in its own mount namespace makes the key directories read-only.
func TestReadOnlyBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("read-only bind mount test: needs root (mount namespaces)")
	}
	dir := t.TempDir()
	srv := ServiceDir(filepath.Join(dir, "sched"))
	remote := ServiceDir(filepath.Join(dir, "remote"))
	if _, err := CreateServerKeys(srv, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteContact(srv, Contact{ContactHost: "localhost", ContactPort: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateClientKeys(remote, "hpc", nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	cmd := helperCmd(t, "readonly", "KEYSTORE_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("read-only bind mount test: cannot unshare the mount namespace: %v", err)
		}
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	if d := diffSnapshots(before, snapshot(t, dir)); d != "" {
		t.Fatalf("files changed under the read-only mount: %s", d)
	}
}
