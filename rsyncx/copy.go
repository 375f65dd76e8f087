package rsyncx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyInstall is the file install without rsync: it copies the run directory runDir into
// destDir on this machine, selecting files with exactly the rules of the rsync command line
// ([Remote.InstallArgv] builds both from one list), so only .service/server.key leaves
// .service. It returns the report rsync's --out-format=%o %n%L would print: "send NAME" for
// each file, link (with " -> TARGET") or new directory ("NAME/") copied, "del. NAME" for each
// one deleted.
//
// It does what those options ask: recursive, symbolic links copied as links, permissions
// kept, a file copied only when its content differs (--checksum), modification times not
// kept (--no-t), and --delete: an entry of destDir that runDir does not have is deleted when
// the rules include it, so what they exclude (the remote's own keys and contact file) is
// never touched, and a directory keeping such an entry stays. Unlike rsync -a it keeps no
// owner or group (the files belong to the caller) and skips special files (FIFOs, sockets,
// devices). Files are written to a temporary name and renamed into place, with their final
// mode set by fchmod (the umask plays no part). destDir's parent must exist, as for rsync.
func CopyInstall(runDir, destDir string, includes []string) ([]string, error) {
	rules, err := installFilter(includes)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(runDir)
	if err != nil {
		return nil, fmt.Errorf("rsyncx: copy: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrInvalid, runDir)
	}
	c := &copier{rules: rules}
	if err := c.mkdir(destDir, "", fi); err != nil {
		return c.out, err
	}
	if err := c.dir(runDir, destDir, ""); err != nil {
		return c.out, err
	}
	return c.out, c.chmod(destDir, fi)
}

type copier struct {
	rules filterList
	out   []string
}

func relJoin(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// dir copies the included entries of src (at rel from the top) into dst, which exists, and
// deletes the included entries dst has and src has not.
func (c *copier) dir(src, dst, rel string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	sent := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		r := relJoin(rel, name)
		sp, dp := filepath.Join(src, name), filepath.Join(dst, name)
		fi, err := os.Lstat(sp)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("rsyncx: copy: %w", err)
		}
		if !c.rules.included(r, fi.IsDir()) {
			continue
		}
		switch {
		case fi.IsDir():
			sent[name] = true
			if err := c.mkdir(dp, r, fi); err != nil {
				return err
			}
			if err := c.dir(sp, dp, r); err != nil {
				return err
			}
			// Last, so that a read-only directory is still written into.
			if err := c.chmod(dp, fi); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			sent[name] = true
			if err := c.file(sp, dp, r, fi); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			sent[name] = true
			if err := c.link(sp, dp, r); err != nil {
				return err
			}
		}
	}

	dents, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	for _, e := range dents {
		if sent[e.Name()] {
			continue
		}
		r := relJoin(rel, e.Name())
		if c.rules.included(r, e.IsDir()) {
			if err := c.remove(filepath.Join(dst, e.Name()), r, e.IsDir()); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes an extraneous entry; in a directory, only what the rules include.
func (c *copier) remove(p, rel string, isDir bool) error {
	if isDir {
		ents, err := os.ReadDir(p)
		if err != nil {
			return fmt.Errorf("rsyncx: copy: %w", err)
		}
		for _, e := range ents {
			r := relJoin(rel, e.Name())
			if c.rules.included(r, e.IsDir()) {
				if err := c.remove(filepath.Join(p, e.Name()), r, e.IsDir()); err != nil {
					return err
				}
			}
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) > 0 {
			c.out = append(c.out, "cannot delete non-empty directory: "+rel)
			return nil
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if isDir {
		rel += "/"
	}
	c.out = append(c.out, "del. "+rel)
	return nil
}

// replaceUnless removes whatever is at p unless keep accepts it.
func replaceUnless(p string, keep func(fs.FileInfo) bool) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if keep(fi) {
		return nil
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	return nil
}

// mkdir makes the directory dst unless it exists, replacing another kind of entry (its mode
// is set by chmod, after its content); rel is "" for the top, which must be a directory if it
// exists and is not reported. Like rsync, it reports a directory made or whose mode is to
// change.
func (c *copier) mkdir(dst, rel string, src fs.FileInfo) error {
	if rel != "" {
		if err := replaceUnless(dst, fs.FileInfo.IsDir); err != nil {
			return err
		}
	}
	fi, err := os.Lstat(dst)
	switch {
	case err == nil:
		if rel != "" && keptMode(fi) != keptMode(src) {
			c.out = append(c.out, "send "+rel+"/")
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if rel != "" {
		c.out = append(c.out, "send "+rel+"/")
	}
	return nil
}

func keptMode(fi fs.FileInfo) fs.FileMode {
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func (c *copier) chmod(dst string, src fs.FileInfo) error {
	fi, err := os.Lstat(dst)
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if keptMode(fi) == keptMode(src) {
		return nil
	}
	if err := os.Chmod(dst, keptMode(src)); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	return nil
}

// file copies a regular file unless dst already holds the same bytes, and sets its mode.
func (c *copier) file(src, dst, rel string, fi fs.FileInfo) error {
	if err := replaceUnless(dst, func(d fs.FileInfo) bool { return d.Mode().IsRegular() }); err != nil {
		return err
	}
	same, err := sameContent(src, dst, fi.Size())
	if err != nil {
		return err
	}
	if same {
		return c.chmod(dst, fi)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".") // 0600, as rsync's
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return fmt.Errorf("rsyncx: copy %s: %w", rel, err)
	}
	if err := tmp.Chmod(keptMode(fi)); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rsyncx: copy %s: %w", rel, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	ok = true
	c.out = append(c.out, "send "+rel)
	return nil
}

// sameContent reports whether the regular file dst exists with size bytes equal to src's.
func sameContent(src, dst string, size int64) (bool, error) {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rsyncx: copy: %w", err)
	}
	if fi.Size() != size {
		return false, nil
	}
	a, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("rsyncx: copy: %w", err)
	}
	defer a.Close()
	b, err := os.Open(dst)
	if err != nil {
		return false, fmt.Errorf("rsyncx: copy: %w", err)
	}
	defer b.Close()
	ba, bb := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		switch {
		case ea == io.EOF || ea == io.ErrUnexpectedEOF:
			return eb == ea, nil
		case ea != nil:
			return false, fmt.Errorf("rsyncx: copy: %w", ea)
		case eb != nil:
			return false, nil
		}
	}
}

// link copies a symbolic link as a link, with its target text unchanged.
func (c *copier) link(src, dst, rel string) error {
	target, err := os.Readlink(src)
	if err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	if cur, err := os.Readlink(dst); err == nil && cur == target {
		return nil
	}
	if err := replaceUnless(dst, func(fs.FileInfo) bool { return false }); err != nil {
		return err
	}
	if err := os.Symlink(target, dst); err != nil {
		return fmt.Errorf("rsyncx: copy: %w", err)
	}
	c.out = append(c.out, "send "+rel+" -> "+target)
	return nil
}
