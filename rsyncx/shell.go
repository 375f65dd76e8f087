package rsyncx

import (
	"fmt"
	"strings"
)

// SplitCommand splits a command string into words the way Python's shlex.split does (POSIX
// mode, no comments), which is how Cylc reads its "ssh command" and "rsync command" settings:
// words are separated by spaces, tabs and newlines; single quotes keep everything literally;
// inside double quotes a backslash escapes only a double quote or a backslash; outside quotes
// a backslash escapes any character. Nothing is expanded. An empty pair of quotes is an empty
// word. An unterminated quote or a trailing backslash is an error.
func SplitCommand(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // inside a word (possibly an empty quoted one)
	)
	const (
		plain = iota
		single
		double
	)
	state := plain
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case plain:
			switch c {
			case ' ', '\t', '\n', '\r':
				if in {
					words = append(words, word.String())
					word.Reset()
					in = false
				}
			case '\'':
				state, in = single, true
			case '"':
				state, in = double, true
			case '\\':
				if i+1 == len(s) {
					return nil, fmt.Errorf("%w: command %q ends with a backslash", ErrInvalid, s)
				}
				i++
				word.WriteByte(s[i])
				in = true
			default:
				word.WriteByte(c)
				in = true
			}
		case single:
			if c == '\'' {
				state = plain
			} else {
				word.WriteByte(c)
			}
		case double:
			switch c {
			case '"':
				state = plain
			case '\\':
				if i+1 == len(s) {
					return nil, fmt.Errorf("%w: command %q has an unterminated quote", ErrInvalid, s)
				}
				if n := s[i+1]; n == '"' || n == '\\' {
					i++
					word.WriteByte(n)
				} else {
					word.WriteByte(c)
				}
			default:
				word.WriteByte(c)
			}
		}
	}
	if state != plain {
		return nil, fmt.Errorf("%w: command %q has an unterminated quote", ErrInvalid, s)
	}
	if in {
		words = append(words, word.String())
	}
	return words, nil
}

// Quote returns s quoted for a POSIX shell, as Python's shlex.quote does: unchanged if it is
// non-empty and made only of ASCII letters, digits and @%+=:,./-_ ; otherwise in single
// quotes, each single quote inside written as '"'"'. The shell reads the result back as the
// one word s, with no expansion of any kind.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !isShellSafe(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func isShellSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("@%+=:,./-_", c) >= 0
}
