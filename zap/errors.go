package zap

import (
	"errors"
	"fmt"
)

// Sentinels. Errors returned by this package wrap one of them or an error from the
// filesystem (match with errors.Is).
var (
	// ErrClosed is returned by methods called after [Authenticator.Close].
	ErrClosed = errors.New("zap: authenticator closed")
	// ErrAllowDeny is returned when both an address allow list and a deny list would be
	// configured; as in pyzmq and czmq's zauth, they are mutually exclusive.
	ErrAllowDeny = errors.New("zap: address allow and deny lists are mutually exclusive")
	// ErrNotDirectory is returned when a key location exists but is not a directory.
	ErrNotDirectory = errors.New("zap: not a directory")
)

// FileError describes one key file that a rescan skipped: unreadable, unparsable, not a
// regular file, or holding an unusable key. The other files of the directory are still
// honoured. Err never contains key material.
type FileError struct {
	// Name is the file's path relative to the key directory.
	Name string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("zap: key file %s: %v", e.Name, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }
