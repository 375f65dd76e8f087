package keystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/curvezmq/curvezmq/curve/key"
)

// GuardError is a refusal of [CreateClientKeys] by one of Cylc's two remote-init guards.
// Msg is Cylc's exact text, which remote-init prints on the line after "REMOTE INIT
// FAILED" before exiting with status 2 (any other CreateClientKeys error exits 3).
type GuardError struct{ Msg string }

// Error returns "keystore: remote init refused: " and Msg.
func (e *GuardError) Error() string { return "keystore: remote init refused: " + e.Msg }

const guardHint = " Check global.cylc install target is configured correctly for this platform."

// isClientKeyName reports whether name matches Cylc's guard pattern ^client_\S*key$.
func isClientKeyName(name string) bool {
	if !strings.HasPrefix(name, "client_") || !strings.HasSuffix(name, "key") {
		return false
	}
	return !strings.ContainsFunc(name, unicode.IsSpace)
}

// CreateClientKeys is the key part of remote-init on an install target's host, in srvDir
// ($HOME/cylc-run/<id>/.service there). It refuses with a [*GuardError] when
//
//   - srvDir/client_public_keys exists: this is the scheduler's own run directory, so the
//     platform should have install target localhost (Cylc's guard A); or
//   - srvDir holds an entry named like ^client_\S*key$ other than client_<target>.key: the
//     filesystem is shared with another install target (guard B; see the package
//     documentation for how this differs from Cylc's substring test).
//
// Otherwise it creates srvDir (0700) if needed, removes the old client.key_secret and
// client_<target>.key and temporary files left by a killed writer, makes a key pair from
// rand (crypto/rand when nil) and writes client.key_secret and client_<target>.key
// (pyzmq's text, one timestamp, atomic, 0600). It returns the public certificate exactly
// as written: remote-init prints it between KEYSTART and KEYEND.
func CreateClientKeys(srvDir, target string, rand io.Reader) (publicCert []byte, err error) {
	if err := ValidTarget(target); err != nil {
		return nil, err
	}
	if err := ensureDir(srvDir); err != nil {
		return nil, err
	}
	cpk := filepath.Join(srvDir, ClientPublicKeysDirName)
	if _, err := os.Stat(cpk); err == nil {
		return nil, &GuardError{Msg: "Unexpected key directory exists: " + cpk + guardHint}
	}
	entries, err := os.ReadDir(srvDir)
	if err != nil {
		return nil, fileErr(srvDir, err)
	}
	own := ClientKeyFile(target)
	for _, e := range entries { // sorted by name
		if name := e.Name(); isClientKeyName(name) && name != own {
			return nil, &GuardError{Msg: "Unexpected authentication key '" + name + "' exists." + guardHint}
		}
	}
	if err := RemoveClientKeys(srvDir, target, false); err != nil {
		return nil, err
	}
	if err := removeStaleTemps(srvDir); err != nil {
		return nil, err
	}
	kp, err := key.GenerateKeyPair(rand)
	if err != nil {
		return nil, fmt.Errorf("keystore: creating the client key pair: %w", err)
	}
	defer kp.Wipe()
	now := time.Now()
	sec := SecretCertificate(&kp, now)
	defer clear(sec)
	if err := WriteFileAtomic(filepath.Join(srvDir, ClientSecretKeyFile), sec, 0o600); err != nil {
		return nil, err
	}
	pub := PublicCertificate(kp.Public, now)
	if err := WriteFileAtomic(filepath.Join(srvDir, own), pub, 0o600); err != nil {
		// Half a key pair is of no use, and the secret must not stay behind.
		if rerr := RemoveClientKeys(srvDir, target, false); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return pub, nil
}

// RemoveClientKeys removes an install target's keys from srvDir on its host, as Cylc's
// remove_keys_on_client: client.key_secret and client_<target>.key, and with fullClean
// also server.key. Missing files are not errors.
func RemoveClientKeys(srvDir, target string, fullClean bool) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	names := []string{ClientSecretKeyFile, ClientKeyFile(target)}
	if fullClean {
		names = append(names, ServerPublicKeyFile)
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, removeFile(filepath.Join(srvDir, name)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := os.Stat(srvDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return syncDir(srvDir)
}

// RemoteTidy is remote-tidy on an install target's host: it removes srvDir/contact, the
// target's keys and server.key ([RemoveClientKeys] with fullClean), temporary files left by
// a killed writer, and then srvDir itself if it is empty (it usually is not: Cylc leaves
// .service/etc there; that failure is ignored, as Cylc ignores it). A missing srvDir has
// nothing to tidy. It removes nothing from an srvDir that is not a directory (a symlink is
// not followed) or that is a scheduler's own (it holds client_public_keys, which
// remote-init refuses too).
func RemoteTidy(srvDir, target string) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	fi, err := os.Lstat(srvDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fileErr(srvDir, err)
	case !fi.IsDir():
		return fmt.Errorf("keystore: remote tidy refused: %s is not a directory; nothing removed", srvDir)
	}
	if cpk := filepath.Join(srvDir, ClientPublicKeysDirName); lexists(cpk) {
		return fmt.Errorf("keystore: remote tidy refused: %s exists, so this is a scheduler's own service directory; nothing removed", cpk)
	}
	err = errors.Join(
		removeFile(filepath.Join(srvDir, ContactFileName)),
		RemoveClientKeys(srvDir, target, true),
		removeStaleTemps(srvDir),
	)
	if err != nil {
		return err
	}
	syscall.Rmdir(srvDir) // only if empty; errors ignored
	return nil
}

// LoadClientKeys loads what a Cylc client uses to connect to the scheduler whose service
// directory is srvDir: its own key pair, both halves from client.key_secret, and the
// server's public key from server.key. A failure with the first wraps [ErrNoClientKey], with
// the second [ErrNoServerKey] (Cylc's [MsgNoClientKey] and [MsgNoServerKey]). Warnings, such
// as a client.key_secret readable by others, go to the standard logger; use
// [LoadClientKeysWarn] to route them.
func LoadClientKeys(srvDir string) (client key.KeyPair, server key.PublicKey, err error) {
	return LoadClientKeysWarn(srvDir, nil)
}

// LoadClientKeysWarn is [LoadClientKeys] with warnings sent to warnf (the standard logger's
// Printf when nil).
func LoadClientKeysWarn(srvDir string, warnf func(format string, args ...any)) (client key.KeyPair, server key.PublicKey, err error) {
	if warnf == nil {
		warnf = log.Printf
	}
	path := filepath.Join(srvDir, ClientSecretKeyFile)
	c, err := ReadCertificate(path)
	if err != nil {
		return key.KeyPair{}, key.PublicKey{}, chain(ErrNoClientKey, err)
	}
	defer c.Wipe()
	if !c.HasSecret {
		return key.KeyPair{}, key.PublicKey{}, chain(ErrNoClientKey, &FileError{Path: path, Err: ErrNoSecret})
	}
	for _, w := range c.Warnings {
		warnf("%s", w)
	}
	spath := filepath.Join(srvDir, ServerPublicKeyFile)
	s, err := ReadCertificate(spath)
	if err != nil {
		return key.KeyPair{}, key.PublicKey{}, chain(ErrNoServerKey, err)
	}
	s.Wipe()
	return key.KeyPair{Public: c.Public, Secret: c.Secret}, s.Public, nil
}

// lexists reports whether something, even a dangling symlink, is at path.
func lexists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
