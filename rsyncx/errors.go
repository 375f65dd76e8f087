package rsyncx

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"unicode/utf8"
)

// Sentinels. Errors from this package wrap one of them where a caller may branch on it (match
// with errors.Is). A command that cannot be found also matches exec.ErrNotFound, and a
// timeout also matches context.DeadlineExceeded.
var (
	// ErrInvalid: an argument (target, workflow id, host, command string, path) was rejected
	// before anything ran.
	ErrInvalid = errors.New("rsyncx: invalid argument")
	// ErrTimeout: the context's deadline passed; the command's whole process group was killed.
	ErrTimeout = errors.New("rsyncx: timed out")
	// ErrUnreachable: ssh (or rsync passing on ssh's status) exited 255, Cylc's sign that the
	// host could not be reached or refused the connection; another host may do better.
	ErrUnreachable = errors.New("rsyncx: host unreachable (exit status 255)")
	// ErrBadOutput: remote-init exited 0 but its output does not hold a key between KEYSTART
	// and KEYEND, or is too large.
	ErrBadOutput = errors.New("rsyncx: malformed remote-init output")
	// ErrTar: the remote-init tar stream holds something other than one .service/contact file
	// within the size limits.
	ErrTar = errors.New("rsyncx: unacceptable tar stream")
)

// ExitError reports a command that ran and did not exit 0. Stderr is the end of the
// command's standard error, bounded.
type ExitError struct {
	Name   string // the program, argv[0]
	Code   int    // the exit status, or -1 if a signal ended the process
	Signal string // the signal's name when Code is -1
	Stderr string
}

// Error returns "rsyncx: NAME exited with status N" or "rsyncx: NAME was killed by SIGNAL",
// followed by the end of stderr.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("rsyncx: ")
	b.WriteString(e.Name)
	if e.Code >= 0 {
		fmt.Fprintf(&b, " exited with status %d", e.Code)
	} else {
		fmt.Fprintf(&b, " was killed by %s", e.Signal)
	}
	if s := summary(e.Stderr); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

// Is makes an exit status of 255 match [ErrUnreachable].
func (e *ExitError) Is(target error) bool { return target == ErrUnreachable && e.Code == 255 }

// notFoundError reports a program that cannot be run because it does not exist; it matches
// exec.ErrNotFound whether the program was looked up in PATH or named by a path.
type notFoundError struct {
	name string
	err  error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("rsyncx: cannot run %q: %v", e.name, e.err)
}

func (e *notFoundError) Unwrap() []error { return []error{exec.ErrNotFound, e.err} }

// summaryLen bounds the stderr text quoted in an error message.
const summaryLen = 512

// summary makes the last lines of a command's stderr fit in an error message: trimmed,
// bounded, and quoted when it holds anything but printable text, so remote output cannot
// forge log lines.
func summary(stderr string) string {
	s := strings.TrimSpace(strings.ReplaceAll(stderr, "\r\n", "\n")) // ssh ends lines with CR LF
	if len(s) > summaryLen {
		s = s[len(s)-summaryLen:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
		s = "..." + s
	}
	printable := true
	for _, r := range s {
		if r == utf8.RuneError || r < ' ' && r != '\n' || r == 0x7f {
			printable = false
			break
		}
	}
	if !printable {
		return fmt.Sprintf("%q", s)
	}
	return strings.ReplaceAll(s, "\n", " / ")
}
