package rsyncx

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/curvezmq/curvezmq/keystore"
)

// ContactMember is the name of the one member of the remote-init tar stream.
const ContactMember = keystore.ServiceDirName + "/" + keystore.ContactFileName

// Limits of the remote-init tar stream.
const (
	// MaxContactSize bounds the contact file (under 1 KiB in practice).
	MaxContactSize = keystore.MaxContactSize
	// maxTarStream bounds the bytes read from the stream.
	maxTarStream = 1 << 20
	// maxTarMembers bounds the headers looked at (more than one is already an error).
	maxTarMembers = 4
)

// WriteContactTar writes to w what the scheduler sends on remote-init's stdin: an
// uncompressed tar stream whose one member, .service/contact (mode 0600), holds the contact
// file of the local service directory serviceDir. The contact file must be a regular file of
// at most [MaxContactSize] bytes.
func WriteContactTar(w io.Writer, serviceDir string) error {
	p := filepath.Join(serviceDir, keystore.ContactFileName)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("rsyncx: contact file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("rsyncx: contact file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: contact file %s is not a regular file", ErrInvalid, p)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxContactSize+1))
	if err != nil {
		return fmt.Errorf("rsyncx: contact file: %w", err)
	}
	if len(data) > MaxContactSize {
		return fmt.Errorf("%w: contact file %s is larger than %d bytes", ErrInvalid, p, MaxContactSize)
	}
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     ContactMember,
		Mode:     0o600,
		Size:     int64(len(data)),
		ModTime:  fi.ModTime().Truncate(1e9),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("rsyncx: contact tar: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("rsyncx: contact tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("rsyncx: contact tar: %w", err)
	}
	return nil
}

// ReadContactTar reads the tar stream that remote-init gets on stdin and returns the contact
// file it carries, or nil if it carries none (an empty stream or an empty archive, as for
// Cylc's poll communication method). The only member accepted is a regular file named exactly
// .service/contact, once, of at most [MaxContactSize] bytes, in a stream of at most 1 MiB:
// absolute names, ".." components, links, directories, devices and any other member are
// rejected with an error matching [ErrTar]. It reads no further than the end of the archive.
func ReadContactTar(r io.Reader) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: maxTarStream + 1}
	tr := tar.NewReader(lr)
	var contact []byte
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrTar, maxTarStream)
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return nil, fmt.Errorf("%w: %w", ErrTar, err)
		}
		if i >= maxTarMembers {
			return nil, fmt.Errorf("%w: too many members", ErrTar)
		}
		if err := checkContactHeader(hdr); err != nil {
			return nil, err
		}
		if contact != nil {
			return nil, fmt.Errorf("%w: %s appears twice", ErrTar, ContactMember)
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxContactSize+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTar, err)
		}
		if int64(len(data)) != hdr.Size {
			return nil, fmt.Errorf("%w: %s is shorter than its header says", ErrTar, ContactMember)
		}
		contact = data
		if contact == nil {
			contact = []byte{}
		}
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrTar, maxTarStream)
	}
	return contact, nil
}

func checkContactHeader(hdr *tar.Header) error {
	name := hdr.Name
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: member name with a NUL byte", ErrTar)
	case path.IsAbs(name) || strings.HasPrefix(name, `\`):
		return fmt.Errorf("%w: absolute member name %q", ErrTar, name)
	case name == ".." || strings.HasPrefix(name, "../") || strings.HasSuffix(name, "/..") || strings.Contains(name, "/../"):
		return fmt.Errorf("%w: member name %q contains ..", ErrTar, name)
	case name != ContactMember:
		return fmt.Errorf("%w: unexpected member %q (only %s is accepted)", ErrTar, name, ContactMember)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeSymlink, tar.TypeLink:
		return fmt.Errorf("%w: %s is a link", ErrTar, name)
	default:
		return fmt.Errorf("%w: %s is not a regular file (type %q)", ErrTar, name, hdr.Typeflag)
	}
	if hdr.Size < 0 || hdr.Size > MaxContactSize {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrTar, name, MaxContactSize)
	}
	return nil
}

// InstallContact writes contact to <runDir>/.service/contact with mode 0600, atomically
// (keystore.WriteFileAtomic): a reader sees the old file or the new one, never a mix. The
// .service directory is made (0700) if missing; a .service that is not a directory (a
// symbolic link, say) is an error.
func InstallContact(runDir string, contact []byte) error {
	if len(contact) > MaxContactSize {
		return fmt.Errorf("%w: contact file larger than %d bytes", ErrInvalid, MaxContactSize)
	}
	srv := keystore.ServiceDir(runDir)
	if err := os.MkdirAll(srv, 0o700); err != nil {
		return fmt.Errorf("rsyncx: %w", err)
	}
	if fi, err := os.Lstat(srv); err != nil {
		return fmt.Errorf("rsyncx: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrInvalid, srv)
	}
	if err := keystore.WriteFileAtomic(filepath.Join(srv, keystore.ContactFileName), contact, 0o600); err != nil {
		return fmt.Errorf("rsyncx: installing the contact file: %w", err)
	}
	return nil
}
