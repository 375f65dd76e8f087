package rsyncx

import (
	"bytes"
	"fmt"
)

// The markers of the remote-init stdout protocol. On success the remote prints
// KEYSTART<its public certificate file>KEYEND, then "REMOTE INIT DONE\n"; login banners and
// debug lines may come before.
const (
	KeyStart = "KEYSTART"
	KeyEnd   = "KEYEND"
)

// MaxRemoteInitOutput bounds the remote-init stdout that is read: a certificate is a few
// hundred bytes, so this leaves ample room for login banners.
const MaxRemoteInitOutput = 256 << 10

// ParseRemoteInitOutput applies Cylc's rule to what remote-init returned: success needs exit
// status 0 and KEYSTART in stdout; the key is then everything from just after the first
// KEYSTART to just before the last KEYEND (group 1 of the greedy regular expression
// KEYSTART((.|\n|\r)*)KEYEND), returned as a copy, verbatim.
//
// It is stricter than Cylc where Cylc would crash or store garbage: status 255 gives an error
// matching [ErrUnreachable]; another non-zero status an [*ExitError]; a missing KEYSTART, a
// KEYSTART with no KEYEND after it (output cut short), an empty key or stdout longer than
// [MaxRemoteInitOutput] an error matching [ErrBadOutput]. On error the key is nil.
func ParseRemoteInitOutput(code int, stdout []byte) ([]byte, error) {
	if code != 0 {
		e := &ExitError{Name: "remote-init", Code: code}
		if code < 0 {
			e.Code, e.Signal = -1, "a signal"
		}
		return nil, e
	}
	if len(stdout) > MaxRemoteInitOutput {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadOutput, MaxRemoteInitOutput)
	}
	start := bytes.Index(stdout, []byte(KeyStart))
	if start < 0 {
		return nil, fmt.Errorf("%w: no %s in the output", ErrBadOutput, KeyStart)
	}
	start += len(KeyStart)
	end := bytes.LastIndex(stdout[start:], []byte(KeyEnd))
	if end < 0 {
		return nil, fmt.Errorf("%w: %s without %s (output cut short?)", ErrBadOutput, KeyStart, KeyEnd)
	}
	if end == 0 {
		return nil, fmt.Errorf("%w: nothing between %s and %s", ErrBadOutput, KeyStart, KeyEnd)
	}
	return bytes.Clone(stdout[start : start+end]), nil
}
