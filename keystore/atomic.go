package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// errSyncUnsupported is what fsync of a directory returns on filesystems that cannot do it;
// the rename is then as durable as that filesystem makes it.
var errSyncUnsupported error = syscall.EINVAL

// tempInfix sits between the target's name and the random digits of a temporary file:
// ".server.key.tmp123456789". The leading dot keeps it out of pyzmq's "*.key" glob, czmq's
// certificate store and [ReadPublicKeys].
const tempInfix = ".tmp"

// WriteFileAtomic writes data to path so that path holds either its old content or all of
// data, whatever happens: it writes a temporary file ".NAME.tmpDIGITS" in the same
// directory, created 0600 and then set to perm (fchmod, so the umask plays no part; the
// process umask is never changed), fsyncs it, renames it over path and fsyncs the
// directory. On failure the temporary file is removed; a crash can leave one behind, which
// [KeyHousekeeping], [CreateClientKeys] and [RemoteTidy] remove.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		return fmt.Errorf("keystore: %s: not a file name", path)
	}
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return fileErr(path, unwrapPath(err))
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm.Perm()); err != nil {
		return fileErr(path, unwrapPath(err))
	}
	if _, err := f.Write(data); err != nil {
		return fileErr(path, unwrapPath(err))
	}
	if err := f.Sync(); err != nil {
		return fileErr(path, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		return fileErr(path, unwrapPath(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fileErr(path, unwrapLink(err))
	}
	renamed = true
	return syncDir(dir)
}

// unwrapPath drops an *fs.PathError (about the temporary name) and keeps its errno.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unwrapLink drops an *os.LinkError (from rename) and keeps its errno.
func unwrapLink(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// syncDir fsyncs a directory so that a rename or unlink in it is durable (and, on NFS,
// visible to other hosts, which is why Cylc does it for the contact file).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fileErr(dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errSyncUnsupported) {
		return fileErr(dir, unwrapPath(err))
	}
	return nil
}

// isTempName reports whether name is a temporary file of [WriteFileAtomic]:
// "." + a name + ".tmp" + digits.
func isTempName(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndex(name, tempInfix)
	if i < 2 || i+len(tempInfix) == len(name) {
		return false
	}
	for _, c := range name[i+len(tempInfix):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// removeStaleTemps removes the temporary files a killed writer left in dir. A missing dir
// is not an error.
func removeStaleTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fileErr(dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.Type().IsRegular() && isTempName(e.Name()) {
			if err := removeFile(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeFile unlinks path; a missing file is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileErr(path, err)
	}
	return nil
}

// ensureDir creates dir with mode 0700 (and its missing parents, 0700 less the umask) and
// sets 0700 exactly on a directory it created. An existing directory is left as it is.
func ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fileErr(dir, unwrapPath(err))
		}
		err = os.Mkdir(dir, 0o700)
	}
	switch {
	case err == nil:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fileErr(dir, err)
		}
		return syncDir(filepath.Dir(dir))
	case errors.Is(err, fs.ErrExist):
		// Lstat: a symlink in its place is refused, never followed to keys elsewhere.
		fi, serr := os.Lstat(dir)
		if serr != nil {
			return fileErr(dir, serr)
		}
		if !fi.IsDir() {
			return &FileError{Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	default:
		return fileErr(dir, err)
	}
}
