//go:build unix

package keystore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on f.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrLocked, f.Name())
		}
		if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ENOLCK) ||
			errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
			// NFS emulates flock with byte-range locks, which need a file open for
			// writing: a directory cannot be.
			return &FileError{Path: f.Name(), Err: fmt.Errorf("%w: %w", ErrLockUnsupported, err)}
		}
		if err != nil {
			return fileErr(f.Name(), err)
		}
		return nil
	}
}
