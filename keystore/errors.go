package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Sentinels. Errors returned by this package wrap one of them, or an [io/fs] error, or both;
// match with errors.Is. Errors about a file are a [*FileError] naming the file and line.
var (
	// ErrEmpty: a certificate file with no content at all (or only whitespace).
	ErrEmpty = errors.New("keystore: empty certificate")
	// ErrNoPublicKey: a certificate without a public-key entry in its curve section.
	ErrNoPublicKey = errors.New("keystore: no public-key")
	// ErrInvalidKey: a key that is not 40 Z85 characters, or a public key unusable for
	// CURVE (all zeros, of small order, or not canonically encoded).
	ErrInvalidKey = errors.New("keystore: invalid key")
	// ErrMismatch: a secret-key whose public key is not the file's public-key.
	ErrMismatch = errors.New("keystore: secret-key does not match public-key")
	// ErrMalformed: a line the parsers cannot read (a key without "=", a duplicate key,
	// text after a closing quote, a contact line without "=", text that is not UTF-8).
	ErrMalformed = errors.New("keystore: malformed line")
	// ErrTooLarge: a file larger than the parser's bound ([MaxCertificateSize],
	// [MaxContactSize]).
	ErrTooLarge = errors.New("keystore: file too large")
	// ErrNotRegular: a path that is not a regular file (a directory, a FIFO, a device).
	ErrNotRegular = errors.New("keystore: not a regular file")
	// ErrHasSecret: a certificate offered as a public key carries a secret-key.
	ErrHasSecret = errors.New("keystore: certificate carries a secret-key")
	// ErrNoSecret: a certificate that should carry a secret-key does not.
	ErrNoSecret = errors.New("keystore: no secret-key")
	// ErrInvalidTarget: an install target name outside [A-Za-z0-9._-]+, or "." or "..".
	ErrInvalidTarget = errors.New("keystore: invalid install target")
	// ErrNoClientKey: a client cannot load client.key_secret. Cylc's text for it is
	// [MsgNoClientKey].
	ErrNoClientKey = errors.New("keystore: failed to find user's private key, so cannot connect")
	// ErrNoServerKey: a client cannot load server.key. Cylc's text for it is
	// [MsgNoServerKey].
	ErrNoServerKey = errors.New("keystore: failed to load the workflow's public key, so cannot connect")
	// ErrNoContact: the contact file cannot be read (usually: the workflow is not running).
	ErrNoContact = errors.New("keystore: couldn't load contact file")
	// ErrNoProcess: [ProcessCommand] found no process with that PID.
	ErrNoProcess = errors.New("keystore: no such process")
	// ErrCannotTell: [DetectOldContact] cannot decide whether the scheduler named by a
	// contact file is alive (its host is not this one, or its process cannot be examined).
	ErrCannotTell = errors.New("keystore: cannot tell if the workflow is running")
	// ErrLocked: another process holds the lock on the .service directory ([LockService]).
	ErrLocked = errors.New("keystore: service directory is locked by another scheduler")
	// ErrLockUnsupported: the file system cannot flock the .service directory (NFS without
	// local locks refuses a lock on a directory); [ClaimService] then carries on without.
	ErrLockUnsupported = errors.New("keystore: the file system cannot lock the service directory")
)

// Cylc's client messages, for a command that wants to print exactly what Cylc prints when
// [LoadClientKeys] fails with [ErrNoClientKey] or [ErrNoServerKey].
const (
	MsgNoClientKey = "Failed to find user's private key, so cannot connect."
	MsgNoServerKey = "Failed to load the workflow's public key, so cannot connect."
)

// FileError is an error about one file: Path names it (as given to the function, or the
// name passed to a parser) and Line is the 1-based line at fault, or 0 when the error is
// about the whole file. Err wraps one of the sentinels or an [io/fs] error. The message
// never contains the content of the line: it may hold a secret key.
type FileError struct {
	Path string
	Line int
	Err  error
}

// Error returns "keystore: <path>:<line>: <reason>", or "keystore: <path>: <reason>" when
// Line is 0.
func (e *FileError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "keystore: ")
	}
	if e.Line > 0 {
		return fmt.Sprintf("keystore: %s:%d: %s", e.Path, e.Line, msg)
	}
	return fmt.Sprintf("keystore: %s: %s", e.Path, msg)
}

// Unwrap returns e.Err.
func (e *FileError) Unwrap() error { return e.Err }

// fileErr turns an error from the os package into a *FileError for path, dropping the
// *fs.PathError layer (whose message repeats the path) but keeping its errno for errors.Is.
func fileErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	return &FileError{Path: path, Err: err}
}

// chainError reads as "<outer>: <inner>" (inner's "keystore: " prefix dropped) and matches
// both outer and inner with errors.Is and errors.As.
type chainError struct{ outer, inner error }

func (e *chainError) Error() string {
	return e.outer.Error() + ": " + strings.TrimPrefix(e.inner.Error(), "keystore: ")
}

func (e *chainError) Unwrap() []error { return []error{e.outer, e.inner} }

// chain wraps inner under the sentinel outer; inner must not be nil.
func chain(outer, inner error) error { return &chainError{outer: outer, inner: inner} }
