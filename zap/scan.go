package zap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// keySet is one immutable scan of a key directory.
type keySet struct {
	keys map[key.PublicKey]keyEntry
}

// keyEntry is what Authorize needs about an allowed key.
type keyEntry struct {
	file string             // the first file (in lexical order) that holds the key
	meta handshake.Metadata // ZAP metadata ([LayoutZauth] only)
}

var emptySet = &keySet{keys: map[key.PublicKey]keyEntry{}}

// fileError is a key file that a rescan skipped: unreadable, unparsable, not a regular
// file, or holding an unusable key. err never contains key material.
type fileError struct {
	name string // relative to the key directory
	err  error
}

// scanResult is the outcome of a successful scan.
type scanResult struct {
	set     *keySet
	bad     []fileError // files skipped, in lexical order
	files   int         // key files read, good or bad
	subdirs []string    // directories below dir to watch ([LayoutZauth] only)
	missing bool        // dir does not exist: the set is empty
}

// scanDir reads every key file of dir, anew: contents count, not names, sizes or
// modification times. A missing directory gives an empty set (its keys are gone); any
// other failure to read the directory itself is an error, and the caller keeps its last
// good set. A file that cannot be used is reported and skipped.
func scanDir(dir string, layout Layout) (scanResult, error) {
	res := scanResult{set: &keySet{keys: map[key.PublicKey]keyEntry{}}}
	var names []string
	switch layout {
	case LayoutPyzmq:
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			res.set, res.missing = emptySet, true
			return res, nil
		}
		if err != nil {
			return scanResult{}, fmt.Errorf("zap: reading key directory: %w", err)
		}
		for _, e := range entries {
			// pyzmq globs <dir>/*.key: no dotfiles, and *.key_secret does not match.
			if n := e.Name(); !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".key") {
				names = append(names, n)
			}
		}
	case LayoutZauth:
		fi, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			res.set, res.missing = emptySet, true
			return res, nil
		}
		if err != nil {
			return scanResult{}, fmt.Errorf("zap: reading key directory: %w", err)
		}
		if !fi.IsDir() {
			return scanResult{}, fmt.Errorf("%w: %s", ErrNotDirectory, dir)
		}
		// From dir + "/": a key directory that is a symlink is followed, as the pyzmq
		// layout's ReadDir follows it (WalkDir does not follow a symlink at its root).
		root := dir + string(filepath.Separator)
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if path == root {
				return err // the root itself unreadable: the scan fails
			}
			rel, _ := filepath.Rel(dir, path)
			n := d.Name()
			if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "_secret") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if err != nil {
				res.bad = append(res.bad, fileError{name: rel, err: err})
				return nil
			}
			if d.IsDir() {
				res.subdirs = append(res.subdirs, path)
				return nil
			}
			names = append(names, rel)
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			res.set, res.missing = emptySet, true
			return res, nil
		}
		if err != nil {
			return scanResult{}, fmt.Errorf("zap: reading key directory: %w", err)
		}
	default:
		return scanResult{}, fmt.Errorf("zap: unknown layout %v", layout)
	}

	// Both listings are in lexical order, so the first file of a duplicated key is stable.
	for _, name := range names {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symbolic links, as pyzmq's open does
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing (or a dangling link): not a key file
		}
		if err != nil {
			res.bad = append(res.bad, fileError{name: name, err: err})
			continue
		}
		if fi.IsDir() && layout == LayoutZauth {
			continue // a link to a directory: not followed, as czmq's walk does not
		}
		res.files++
		if !fi.Mode().IsRegular() {
			// Never open a FIFO or a device: reading it could block the watcher.
			res.bad = append(res.bad, fileError{name: name, err: errors.New("not a regular file")})
			continue
		}
		pub, meta, err := readKeyFile(path, layout == LayoutZauth)
		if errors.Is(err, fs.ErrNotExist) {
			res.files--
			continue
		}
		if err == nil {
			err = pub.Check()
		}
		if err != nil {
			res.bad = append(res.bad, fileError{name: name, err: err})
			continue
		}
		if _, dup := res.set.keys[pub]; !dup {
			res.set.keys[pub] = keyEntry{file: name, meta: meta}
		}
	}
	slices.SortFunc(res.bad, func(x, y fileError) int { return strings.Compare(x.name, y.name) })
	return res, nil
}
