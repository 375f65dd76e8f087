package rsyncx

import (
	"fmt"
	"strings"

	"github.com/curvezmq/curvezmq/keystore"
)

// Length limits; workflow ids and base directories are path fragments.
const (
	maxIDLen   = 255
	maxHostLen = 255
	maxWordLen = 4096
)

// ValidTarget reports whether name can be an install target, by the keystore's rule
// (keystore.ValidTarget): 1 to 200 ASCII letters, digits, dots, underscores and hyphens, not
// "." or "..", and not starting with "-" (it is a command-line argument on the remote side).
// The error matches [ErrInvalid] and keystore.ErrInvalidTarget.
func ValidTarget(name string) error {
	if err := keystore.ValidTarget(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidWorkflowID reports whether id can be a workflow id: a relative path of one or more
// components separated by "/" (as in "flow/run1"), at most 255 bytes, each component made of
// ASCII letters, digits, dots, underscores, plus signs, "@" and hyphens (Cylc's set, in
// ASCII), none empty, "." or "..", and the first not starting with "-". There is no leading
// or trailing "/" and no whitespace.
func ValidWorkflowID(id string) error {
	return validRelPath("workflow id", id)
}

// validBaseDir reports whether dir can be the remote base directory, a path relative to the
// remote home ("curvezmq-run" by default); it follows the workflow id rules.
func validBaseDir(dir string) error {
	return validRelPath("remote base directory", dir)
}

func validRelPath(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(p) > maxIDLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxIDLen)
	case p[0] == '/':
		return fmt.Errorf("%w: %s %q is absolute", ErrInvalid, what, p)
	case p[0] == '-':
		return fmt.Errorf("%w: %s %q starts with '-'", ErrInvalid, what, p)
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return fmt.Errorf("%w: %s %q has an empty component", ErrInvalid, what, p)
		case ".", "..":
			return fmt.Errorf("%w: %s %q has a %q component", ErrInvalid, what, p, c)
		}
		for i := 0; i < len(c); i++ {
			if b := c[i]; !isNameByte(b) && b != '+' && b != '@' {
				return fmt.Errorf("%w: %s %q: only letters, digits, '.', '_', '+', '@', '-' and '/' are allowed", ErrInvalid, what, p)
			}
		}
	}
	return nil
}

// ValidHost reports whether host can be an ssh destination: a host name or IPv4 address
// optionally preceded by "user@", at most 255 bytes of ASCII letters, digits, dots,
// underscores and hyphens (plus the one "@"), not starting with "-" (ssh would read an
// option). Whitespace, shell metacharacters, ":" (rsync's host separator) and IPv6 literals
// are rejected.
func ValidHost(host string) error {
	switch {
	case host == "":
		return fmt.Errorf("%w: empty host", ErrInvalid)
	case len(host) > maxHostLen:
		return fmt.Errorf("%w: host longer than %d bytes", ErrInvalid, maxHostLen)
	}
	user, name, hasUser := strings.Cut(host, "@")
	if !hasUser {
		user, name = "", host
	}
	for _, part := range []struct{ what, s string }{{"user", user}, {"host name", name}} {
		if part.s == "" && (part.what == "host name" || hasUser) {
			return fmt.Errorf("%w: host %q has an empty %s", ErrInvalid, host, part.what)
		}
		if part.s != "" && part.s[0] == '-' {
			return fmt.Errorf("%w: host %q: %s starts with '-'", ErrInvalid, host, part.what)
		}
		for i := 0; i < len(part.s); i++ {
			if !isNameByte(part.s[i]) {
				return fmt.Errorf("%w: host %q: only letters, digits, '.', '_', '-' and one '@' are allowed", ErrInvalid, host)
			}
		}
	}
	return nil
}

// ValidInclude reports whether item can be an extra file-install item, under the rules of
// Cylc's [scheduler]install setting: a top-level name in the run directory, a directory if it
// ends in "/". Names follow the workflow id component rules, so no wildcards, no "/" inside
// and no leading "-".
func ValidInclude(item string) error {
	name := strings.TrimSuffix(item, "/")
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: install item %q is not a top-level name", ErrInvalid, item)
	}
	if err := validRelPath("install item", name); err != nil {
		return err
	}
	if name == keystore.ServiceDirName {
		// It would come before the rule that keeps everything but server.key in it.
		return fmt.Errorf("%w: install item %q: only .service/server.key leaves .service", ErrInvalid, item)
	}
	return nil
}

// validWord checks a word that goes to a command line: not empty, not too long, no NUL.
func validWord(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(s) > maxWordLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxWordLen)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
