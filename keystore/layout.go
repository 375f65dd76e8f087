package keystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// Cylc's names in a run directory (cylc/flow/workflow_files.py, WorkflowFiles.Service).
const (
	ServiceDirName          = ".service"
	ClientPublicKeysDirName = "client_public_keys"
	ContactFileName         = "contact"
	ServerPublicKeyFile     = "server.key"
	ServerSecretKeyFile     = "server.key_secret"
	ClientSecretKeyFile     = "client.key_secret"

	// LocalhostTarget is the install target whose public key (the server's own) the
	// scheduler lists as client_localhost.key.
	LocalhostTarget = "localhost"
)

// ServiceDir returns runDir/.service.
func ServiceDir(runDir string) string { return filepath.Join(runDir, ServiceDirName) }

// ClientKeyFile returns the name of an install target's public key file,
// "client_<target>.key": in client_public_keys/ on the scheduler, in .service on the remote.
func ClientKeyFile(target string) string { return "client_" + target + ".key" }

// maxTargetLen keeps client_<target>.key and its temporary name within NAME_MAX.
const maxTargetLen = 200

// ValidTarget returns an error wrapping [ErrInvalidTarget] unless name is a usable install
// target: one or more of [A-Za-z0-9._-], at most 200 bytes, not "." or "..", and not
// starting with "-" (it would read as an option in a command line). Cylc itself does not
// check; these are the names that are safe in a file name and in a remote shell command.
func ValidTarget(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTargetLen || name[0] == '-' {
		return fmt.Errorf("%w %q", ErrInvalidTarget, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only letters, digits, '.', '_' and '-' are allowed", ErrInvalidTarget, name)
		}
	}
	return nil
}

// KeyHousekeeping discards every key of a previous run from the scheduler's service
// directory srvDir, as Cylc's remove_keys_on_server does before it makes new ones:
// server.key, server.key_secret, client.key_secret and the whole client_public_keys/
// directory; it also removes temporary files a killed writer left behind. Missing files,
// and a missing srvDir, are not errors. Call it only while holding [LockService] and after
// [DetectOldContact] found no live scheduler (or use [ClaimService]).
func KeyHousekeeping(srvDir string) error {
	var errs []error
	for _, name := range []string{ServerPublicKeyFile, ServerSecretKeyFile, ClientSecretKeyFile} {
		errs = append(errs, removeFile(filepath.Join(srvDir, name)))
	}
	cpk := filepath.Join(srvDir, ClientPublicKeysDirName)
	if err := os.RemoveAll(cpk); err != nil {
		errs = append(errs, fileErr(cpk, unwrapPath(err)))
	}
	errs = append(errs, removeStaleTemps(srvDir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := os.Stat(srvDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return syncDir(srvDir)
}

// RemoveServerKeys is the scheduler's shutdown cleanup: it removes the same files as
// [KeyHousekeeping]. Cylc removes the contact file after this, last of all.
func RemoveServerKeys(srvDir string) error { return KeyHousekeeping(srvDir) }

// CreateServerKeys makes the scheduler's keys as Cylc's create_server_keys does: it creates
// srvDir (0700) and srvDir/client_public_keys (0700) if needed, makes a key pair from rand
// (crypto/rand when nil) and writes, each atomically with mode 0600:
//
//   - server.key and server.key_secret, pyzmq's text with one timestamp;
//   - client.key_secret, a byte-for-byte copy of server.key_secret (local clients use the
//     server's own key pair);
//   - client_public_keys/client_localhost.key, a copy of server.key. The name is always
//     client_localhost.key, where Cylc uses client_<--host>.key when started with
//     --host=<a local name>.
//
// It returns the key pair; the caller should Wipe it when done.
func CreateServerKeys(srvDir string, rand io.Reader) (key.KeyPair, error) {
	if err := ensureDir(srvDir); err != nil {
		return key.KeyPair{}, err
	}
	cpk := filepath.Join(srvDir, ClientPublicKeysDirName)
	if err := ensureDir(cpk); err != nil {
		return key.KeyPair{}, err
	}
	kp, err := key.GenerateKeyPair(rand)
	if err != nil {
		return key.KeyPair{}, fmt.Errorf("keystore: creating the server key pair: %w", err)
	}
	now := time.Now()
	pub := PublicCertificate(kp.Public, now)
	sec := SecretCertificate(&kp, now)
	defer clear(sec)
	writes := []struct {
		path string
		data []byte
	}{
		{filepath.Join(srvDir, ServerPublicKeyFile), pub},
		{filepath.Join(srvDir, ServerSecretKeyFile), sec},
		{filepath.Join(srvDir, ClientSecretKeyFile), sec},
		{filepath.Join(cpk, ClientKeyFile(LocalhostTarget)), pub},
	}
	for _, w := range writes {
		if err := WriteFileAtomic(w.path, w.data, 0o600); err != nil {
			kp.Wipe()
			return key.KeyPair{}, err
		}
	}
	return kp, nil
}

// InstallClientKey saves the public certificate an install target's remote-init printed
// (the text between KEYSTART and KEYEND) as client_public_keys/client_<target>.key,
// verbatim, atomically and with mode 0600, replacing an older one. cert must parse as a
// certificate with a usable public key and no secret key ([ErrHasSecret]); the
// authenticator must then reload its allow-list. The target "localhost" is refused
// ([ErrInvalidTarget]): its entry is the server's own key, written by [CreateServerKeys].
func InstallClientKey(srvDir, target string, cert []byte) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	if target == LocalhostTarget {
		return fmt.Errorf("%w %q: its allow-list entry is the server's own key", ErrInvalidTarget, target)
	}
	cpk := filepath.Join(srvDir, ClientPublicKeysDirName)
	path := filepath.Join(cpk, ClientKeyFile(target))
	c, err := ParseCertificate(path, cert)
	if err != nil {
		return err
	}
	defer c.Wipe()
	// pyzmq (and so Cylc) reads keys from any line, whatever its section: what the file
	// says to pyzmq must be what it says to us.
	pyPub, pySecret := pyzmqKeys(cert)
	if c.HasSecret || pySecret {
		return &FileError{Path: path, Err: ErrHasSecret}
	}
	if pyPub != c.Public.String() {
		return &FileError{Path: path, Err: fmt.Errorf("%w: pyzmq would read another public-key (its last)", ErrMalformed)}
	}
	if err := c.Public.Check(); err != nil {
		return &FileError{Path: path, Err: fmt.Errorf("%w: public-key: %w", ErrInvalidKey, err)}
	}
	if err := ensureDir(cpk); err != nil {
		return err
	}
	return WriteFileAtomic(path, cert, 0o600)
}

// RemoveClientKey removes client_public_keys/client_<target>.key; a missing file is not
// an error. The authenticator must then reload its allow-list.
func RemoveClientKey(srvDir, target string) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	dir := filepath.Join(srvDir, ClientPublicKeysDirName)
	if err := removeFile(filepath.Join(dir, ClientKeyFile(target))); err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return syncDir(dir)
}
