package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// MaxCertificateSize bounds a certificate file. pyzmq's files are about 360 bytes; a
// larger file is refused with [ErrTooLarge] before it is parsed.
const MaxCertificateSize = 64 << 10

// Property is one metadata entry of a certificate (a line of its metadata section).
type Property struct{ Name, Value string }

// Certificate is the content of a CURVE certificate file: a public key, and the secret key
// when the file is a NAME.key_secret.
type Certificate struct {
	Public    key.PublicKey
	Secret    key.SecretKey // zero unless HasSecret
	HasSecret bool
	// Metadata holds the metadata section's entries in file order (czmq passes them to
	// ZAP; Cylc never writes any).
	Metadata []Property
	// Warnings is set by [ReadCertificate]: for example that a file carrying a secret key is
	// readable by group or others. It never contains key material.
	Warnings []string
}

// Wipe zeroes the secret key, if any.
func (c *Certificate) Wipe() { c.Secret.Wipe() }

// The certificate text as pyzmq writes it (zmq/auth/certs.py); czmq's differs only in the
// "by CZMQ" stamp and a timestamp without microseconds.
const (
	publicBanner = "#   ****  Generated on %s by pyzmq  ****\n" +
		"#   ZeroMQ CURVE Public Certificate\n" +
		"#   Exchange securely, or use a secure mechanism to verify the contents\n" +
		"#   of this file after exchange. Store public certificates in your home\n" +
		"#   directory, in the .curve subdirectory.\n\n"
	secretBanner = "#   ****  Generated on %s by pyzmq  ****\n" +
		"#   ZeroMQ CURVE **Secret** Certificate\n" +
		"#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
)

// pyzmqTime formats t as Python's str(datetime): microseconds only when non-zero.
func pyzmqTime(t time.Time) string {
	s := t.Format("2006-01-02 15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// PublicCertificate returns the text pyzmq's create_certificates writes to NAME.key for
// pub, stamped with now as str(datetime.now()) would print it (now's own location is used;
// pass time.Now() for pyzmq's local time).
func PublicCertificate(pub key.PublicKey, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, publicBanner, pyzmqTime(now))
	b.WriteString("metadata\ncurve\n    public-key = \"")
	b.WriteString(pub.String())
	b.WriteString("\"\n")
	return b.Bytes()
}

// SecretCertificate returns the text pyzmq's create_certificates writes to NAME.key_secret
// for kp (see [PublicCertificate] for now). The result holds the secret key: the caller
// should clear it once written. kp is written as given; [ParseCertificate] refuses a file
// whose keys do not match.
func SecretCertificate(kp *key.KeyPair, now time.Time) []byte {
	ts := pyzmqTime(now)
	// Room for everything, so that no append copies the secret into a new array.
	out := make([]byte, 0, len(secretBanner)+len(ts)+256)
	out = fmt.Appendf(out, secretBanner, ts)
	out = append(out, "metadata\ncurve\n    public-key = \""...)
	out = append(out, kp.Public.String()...)
	out = append(out, "\"\n    secret-key = \""...)
	out = kp.Secret.UnsafeAppendZ85(out)
	out = append(out, "\"\n"...)
	return out
}

// ParseCertificate reads a certificate written by pyzmq or czmq, as leniently as their
// loaders do; name is used only in errors. See the package documentation ("Reading
// certificates") for the rules. Errors are a [*FileError] wrapping [ErrEmpty],
// [ErrNoPublicKey], [ErrInvalidKey], [ErrMismatch], [ErrMalformed] or [ErrTooLarge], and never
// contain the text of a line. On error the certificate is nil.
func ParseCertificate(name string, data []byte) (*Certificate, error) {
	c, line, err := parseCertificate(data)
	if err != nil {
		return nil, &FileError{Path: name, Line: line, Err: err}
	}
	return c, nil
}

const (
	sectionNone = iota // no section line seen yet: pyzmq accepts bare key lines
	sectionCurve
	sectionMetadata
	sectionOther
)

func parseCertificate(data []byte) (*Certificate, int, error) {
	if len(data) > MaxCertificateSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxCertificateSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(trimSpace(data)) == 0 {
		return nil, 0, ErrEmpty
	}
	c := new(Certificate)
	var pubLine, secLine int
	section := sectionNone
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		line := trimSpace(raw)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		eq := bytes.IndexByte(line, '=')
		if eq < 0 {
			// The first word, cut at the same ASCII blanks that trimSpace removes, so that it
			// is never empty (bytes.Fields would also cut at Unicode spaces such as U+00A0).
			first := line
			if i := bytes.IndexAny(line, " \t\v\f\r"); i >= 0 {
				first = line[:i]
			}
			if isKeyName(first) && (!indented || section == sectionCurve || section == sectionNone) {
				c.Wipe()
				return nil, n, fmt.Errorf("%w: %s has no '='", ErrMalformed, first)
			}
			if !indented {
				switch string(line) {
				case "curve":
					section = sectionCurve
				case "metadata":
					section = sectionMetadata
				default:
					section = sectionOther
				}
				continue
			}
			if section == sectionMetadata {
				c.Metadata = append(c.Metadata, Property{Name: string(line)})
			}
			continue
		}
		name := trimSpace(line[:eq])
		value, err := unquote(trimSpace(line[eq+1:]))
		if err != nil {
			c.Wipe()
			return nil, n, err
		}
		switch section {
		case sectionMetadata:
			c.Metadata = append(c.Metadata, Property{Name: string(name), Value: string(value)})
			continue
		case sectionOther:
			continue
		}
		switch string(name) {
		case "public-key":
			if pubLine != 0 {
				c.Wipe()
				return nil, n, fmt.Errorf("%w: second public-key (the first is on line %d)", ErrMalformed, pubLine)
			}
			pub, err := parseKeyValue(value, "public-key")
			if err != nil {
				c.Wipe()
				return nil, n, err
			}
			c.Public, pubLine = pub, n
		case "secret-key":
			if secLine != 0 {
				c.Wipe()
				return nil, n, fmt.Errorf("%w: second secret-key (the first is on line %d)", ErrMalformed, secLine)
			}
			secLine = n
			if len(value) == 0 {
				// pyzmq returns an empty secret, which Cylc treats as none; czmq ignores
				// a secret-key that is not 40 characters long.
				continue
			}
			if err := checkKeyText(value, "secret-key"); err != nil {
				c.Wipe()
				return nil, n, err
			}
			sec, err := key.ParseSecretKey(value)
			if err != nil {
				c.Wipe()
				return nil, n, fmt.Errorf("%w: secret-key is not valid Z85", ErrInvalidKey)
			}
			c.Secret, c.HasSecret = sec, true
		}
	}
	if pubLine == 0 {
		c.Wipe()
		return nil, 0, ErrNoPublicKey
	}
	if c.HasSecret && !c.Secret.Public().Equal(c.Public) {
		c.Wipe()
		return nil, secLine, ErrMismatch
	}
	return c, 0, nil
}

func isKeyName(b []byte) bool {
	return string(b) == "public-key" || string(b) == "secret-key"
}

// unquote extracts a value the way both loaders agree on: "..." or '...' (czmq, which
// also allows a trailing # comment), otherwise pyzmq's rule, stripping spaces, tabs and
// both quote characters from both ends.
func unquote(v []byte) ([]byte, error) {
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		if j := bytes.IndexByte(v[1:], v[0]); j >= 0 {
			tail := trimSpace(v[j+2:])
			if len(tail) > 0 && tail[0] != '#' {
				return nil, fmt.Errorf("%w: text after the closing quote", ErrMalformed)
			}
			return v[1 : j+1], nil
		}
	}
	return bytes.Trim(v, " \t'\""), nil
}

// checkKeyText explains why v is not 40 Z85 characters, without quoting it.
func checkKeyText(v []byte, what string) error {
	if len(v) != key.Z85Len {
		return fmt.Errorf("%w: %s is %d characters, want %d Z85 characters", ErrInvalidKey, what, len(v), key.Z85Len)
	}
	for i, ch := range v {
		if strings.IndexByte(key.Z85Alphabet, ch) < 0 {
			return fmt.Errorf("%w: %s has a character outside the Z85 alphabet at offset %d", ErrInvalidKey, what, i)
		}
	}
	return nil
}

func parseKeyValue(v []byte, what string) (key.PublicKey, error) {
	if err := checkKeyText(v, what); err != nil {
		return key.PublicKey{}, err
	}
	pub, err := key.ParsePublicKey(v)
	if err != nil {
		// Only a 5-character group above 2^32-1 gets here.
		return key.PublicKey{}, fmt.Errorf("%w: %s is not valid Z85", ErrInvalidKey, what)
	}
	return pub, nil
}

// trimSpace strips what Python's bytes.strip() strips: ASCII space, \t, \n, \r, \v, \f.
func trimSpace(b []byte) []byte { return bytes.Trim(b, " \t\n\r\v\f") }

// pyzmqKeys reads data as pyzmq's load_certificate does, sections ignored: the value of
// the last line that starts with public-key, and whether a line that starts with
// secret-key has a non-empty value. Only printable key text is returned, never a secret.
func pyzmqKeys(data []byte) (public string, hasSecret bool) {
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = trimSpace(line)
		eq := bytes.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		value := bytes.Trim(line[eq+1:], " \t'\"")
		switch {
		case bytes.HasPrefix(line, []byte("public-key")):
			public = string(value)
		case bytes.HasPrefix(line, []byte("secret-key")):
			hasSecret = hasSecret || len(value) > 0
		}
	}
	return public, hasSecret
}

// ReadCertificate reads and parses the certificate file at path (at most
// [MaxCertificateSize] bytes; not a FIFO or directory). When the file carries a secret key
// and its mode grants any access to group or others, the certificate's Warnings say so.
func ReadCertificate(path string) (*Certificate, error) {
	data, mode, err := readBounded(path, MaxCertificateSize)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	c, err := ParseCertificate(path, data)
	if err != nil {
		return nil, err
	}
	if c.HasSecret && mode.Perm()&0o077 != 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"keystore: %s: secret key file has mode %04o, readable by others; it should be 0600", path, mode.Perm()))
	}
	return c, nil
}

// readBounded reads a regular file of at most limit bytes. Errors are *FileError.
func readBounded(path string, limit int64) ([]byte, os.FileMode, error) {
	// Stat first so that a FIFO is refused before open can block on it.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, fileErr(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &FileError{Path: path, Err: ErrNotRegular}
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, 0, fileErr(path, err)
	}
	defer f.Close()
	fi2, err := f.Stat()
	if err != nil {
		return nil, 0, fileErr(path, err)
	}
	if !os.SameFile(fi, fi2) || !fi2.Mode().IsRegular() {
		return nil, 0, &FileError{Path: path, Err: ErrNotRegular}
	}
	if fi2.Size() > limit {
		return nil, 0, &FileError{Path: path, Err: fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi2.Size(), limit)}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		clear(data)
		return nil, 0, fileErr(path, err)
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, 0, &FileError{Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	return data, fi2.Mode(), nil
}

// openNoBlock opens path for reading without blocking, so that a FIFO swapped in after a
// Stat cannot block the open either (the caller's Fstat then refuses it). Reads of a
// regular file are not affected.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// CreateCertificates does what pyzmq's zmq.auth.create_certificates(dir, name) does: it
// makes a key pair from rand (crypto/rand when nil) and writes dir/name.key and
// dir/name.key_secret with one timestamp, each atomically and with mode 0600. It returns
// the two paths. name must be a plain file name.
func CreateCertificates(dir, name string, rand io.Reader) (publicPath, secretPath string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return "", "", fmt.Errorf("keystore: certificate name %q is not a plain file name", name)
	}
	kp, err := key.GenerateKeyPair(rand)
	if err != nil {
		return "", "", fmt.Errorf("keystore: creating a key pair: %w", err)
	}
	defer kp.Wipe()
	now := time.Now()
	publicPath = filepath.Join(dir, name+".key")
	secretPath = filepath.Join(dir, name+".key_secret")
	if err := WriteFileAtomic(publicPath, PublicCertificate(kp.Public, now), 0o600); err != nil {
		return "", "", err
	}
	sec := SecretCertificate(&kp, now)
	defer clear(sec)
	if err := WriteFileAtomic(secretPath, sec, 0o600); err != nil {
		return "", "", err
	}
	return publicPath, secretPath, nil
}

// KeyFile is one certificate found by [ReadPublicKeys].
type KeyFile struct {
	Name   string // the file name within the directory
	Public key.PublicKey
}

// ReadPublicKeys reads the public keys of dir the way pyzmq's load_certificates does,
// which is the allow-list Cylc's authenticator uses: every "*.key" entry of dir, not
// recursive, skipping names that begin with "." (so never a temporary file of
// [WriteFileAtomic]); "*.key_secret" does not match. Files that fail to parse are left out
// and reported together in the error (pyzmq would abort the whole load; the caller
// decides); the files that did parse are returned, sorted by name, in either case.
func ReadPublicKeys(dir string) ([]KeyFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fileErr(dir, err)
	}
	var out []KeyFile
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".key") {
			continue
		}
		c, err := ReadCertificate(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, KeyFile{Name: name, Public: c.Public})
		c.Wipe()
	}
	slices.SortFunc(out, func(a, b KeyFile) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}
