package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Contact is the content of the contact file: Cylc's KEY=VALUE fields. It exists only
// while the scheduler runs.
type Contact map[string]string

// The contact file's fields (cylc/flow/workflow_files.py, ContactFileFields), in sorted
// order. A Cylc 8 scheduler writes all of them; readers need only [ContactHost] and
// [ContactPort], liveness checks also [ContactPID] and [ContactCommand].
const (
	ContactAPI         = "CYLC_API"                               // always ContactAPIVersion
	ContactVersion     = "CYLC_VERSION"                           // the scheduler's version
	ContactCommand     = "CYLC_WORKFLOW_COMMAND"                  // shlex-joined argv of the scheduler ([ProcessCommand])
	ContactHost        = "CYLC_WORKFLOW_HOST"                     // the scheduler's host name
	ContactID          = "CYLC_WORKFLOW_ID"                       // the workflow id
	ContactOwner       = "CYLC_WORKFLOW_OWNER"                    // the user name
	ContactPID         = "CYLC_WORKFLOW_PID"                      // the scheduler's process id
	ContactPort        = "CYLC_WORKFLOW_PORT"                     // the request (REP) port
	ContactPublishPort = "CYLC_WORKFLOW_PUBLISH_PORT"             // the publish (PUB) port
	ContactRunDir      = "CYLC_WORKFLOW_RUN_DIR_ON_WORKFLOW_HOST" // the run directory, expanded
	ContactUUID        = "CYLC_WORKFLOW_UUID"                     // the run's UUID, kept across restarts
	ContactCylcPath    = "SCHEDULER_CYLC_PATH"                    // "cylc path" of localhost, or None
	ContactSSHCommand  = "SCHEDULER_SSH_COMMAND"                  // "ssh command" of localhost
	ContactLoginShell  = "SCHEDULER_USE_LOGIN_SHELL"              // True or False
)

// ContactAPIVersion is the value of [ContactAPI] (Cylc's network API, 5 since 8.0b0).
const ContactAPIVersion = "5"

// MaxContactSize bounds the contact file; Cylc's is under 1 KiB.
const MaxContactSize = 64 << 10

// ParseContact reads a contact file the way Cylc's load_contact_file does: text split
// into lines as Python's str.splitlines splits them, each line split at its first "=",
// both sides stripped of whitespace, "SUITE" replaced by "WORKFLOW" in keys (contact files
// of Cylc 8.0b0 and b1); the last of duplicate keys wins and unknown keys are kept. A line
// without "=" (a blank line too) and text that is not UTF-8 are errors (a [*FileError]
// naming "contact" and the line, wrapping [ErrMalformed]). An empty file gives an empty
// Contact. On error the Contact is nil.
func ParseContact(data []byte) (Contact, error) {
	c, line, err := parseContact(data)
	if err != nil {
		return nil, &FileError{Path: ContactFileName, Line: line, Err: err}
	}
	return c, nil
}

func parseContact(data []byte) (Contact, int, error) {
	if len(data) > MaxContactSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxContactSize)
	}
	if !utf8.Valid(data) {
		return nil, 0, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	c := Contact{}
	for n, line := range splitLines(string(data)) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, n + 1, fmt.Errorf("%w: no '=' in the line", ErrMalformed)
		}
		k = strings.ReplaceAll(pyStrip(k), "SUITE", "WORKFLOW")
		c[k] = pyStrip(v)
	}
	return c, 0, nil
}

// isLineBreak reports whether Python's str.splitlines breaks at r.
func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// splitLines splits s as Python's str.splitlines(): "\r\n" is one break, no final empty
// line.
func splitLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexFunc(s, isLineBreak)
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if strings.HasPrefix(s[i:], "\r\n") {
			s = s[i+2:]
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			s = s[i+size:]
		}
	}
	return lines
}

// isPySpace reports whether Python's str.isspace() holds for r.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyStrip strips as Python's str.strip() with no argument does.
func pyStrip(s string) string { return strings.TrimFunc(s, isPySpace) }

// Marshal returns the contact file's text as Cylc's dump_contact_file writes it: one
// KEY=VALUE line per field, sorted by key, each ending in "\n", no quoting. It refuses
// (wrapping [ErrMalformed]) a key that is empty or holds "=", and a key or value that is
// not UTF-8, holds a line break, or has leading or trailing whitespace: text that
// [ParseContact] would not read back unchanged.
func (c Contact) Marshal() ([]byte, error) {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := c[k]
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%w: contact key %q", ErrMalformed, k)
		}
		if err := checkContactText(k); err != nil {
			return nil, fmt.Errorf("%w: contact key %q: %s", ErrMalformed, k, err)
		}
		if err := checkContactText(v); err != nil {
			return nil, fmt.Errorf("%w: contact value of %s: %s", ErrMalformed, k, err)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

func checkContactText(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	case strings.ContainsFunc(s, isLineBreak):
		return errors.New("holds a line break")
	case pyStrip(s) != s:
		return errors.New("has leading or trailing whitespace")
	}
	return nil
}

// WriteContact writes srvDir/contact from c as Cylc does ([Contact.Marshal]),
// atomically, with mode 0600, fsyncing the file and the directory. It does not add or
// check fields: fill all of Cylc's (ContactAPI with [ContactAPIVersion], ContactVersion,
// ...) for a file Cylc's tools read.
func WriteContact(srvDir string, c Contact) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(srvDir, ContactFileName), data, 0o600)
}

// ReadContact reads and parses srvDir/contact (at most [MaxContactSize] bytes). When the
// file cannot be read (it is missing: the workflow is not running) the error wraps
// [ErrNoContact]; a file that does not parse gives ParseContact's error, naming the path.
// Like Cylc, it lists srvDir once and retries when the file seems missing, which refreshes
// a stale NFS cache.
func ReadContact(srvDir string) (Contact, error) {
	path := filepath.Join(srvDir, ContactFileName)
	data, _, err := readBounded(path, MaxContactSize)
	if errors.Is(err, fs.ErrNotExist) {
		if d, derr := os.Open(srvDir); derr == nil {
			d.Readdirnames(-1)
			d.Close()
		}
		data, _, err = readBounded(path, MaxContactSize)
	}
	if err != nil {
		return nil, chain(ErrNoContact, err)
	}
	c, line, err := parseContact(data)
	if err != nil {
		return nil, &FileError{Path: path, Line: line, Err: err}
	}
	return c, nil
}

// HostPort returns the scheduler's host and request port, all a client needs to connect.
func (c Contact) HostPort() (host string, port int, err error) {
	host = c[ContactHost]
	if host == "" {
		return "", 0, fmt.Errorf("keystore: contact file has no %s", ContactHost)
	}
	p, ok := c[ContactPort]
	if !ok {
		return "", 0, fmt.Errorf("keystore: contact file has no %s", ContactPort)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("keystore: contact file has an invalid %s %q", ContactPort, p)
	}
	return host, port, nil
}
