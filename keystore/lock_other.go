//go:build !unix

package keystore

import (
	"errors"
	"os"
)

// lockFile is not implemented without flock.
func lockFile(f *os.File) error {
	return &FileError{Path: f.Name(), Err: errors.ErrUnsupported}
}
