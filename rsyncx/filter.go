package rsyncx

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// filterRule is one --include or --exclude rule of an rsync command line, read as rsync
// reads it (its filter rules section): a leading "/" anchors the pattern at the top of the
// transfer; a trailing "/" makes it match directories only; "*" matches anything but "/",
// "**" anything, "?" one character but "/"; "dir/***" matches the directory dir and
// everything under it. A pattern without "/" (leading and trailing ones aside) and without
// "**" is matched against the last component of a path; one with a "/" inside but no "**"
// against as many trailing components as it has; an anchored one against the whole path.
type filterRule struct {
	include  bool
	anchored bool
	dirOnly  bool
	pattern  string // without the anchoring "/" and the trailing "/"
}

// parseFilterRule reads "--include=PATTERN" or "--exclude=PATTERN". Character classes and
// backslash escapes are refused: no rule of the file install uses them, and a copier that
// half-supported them could select other files than rsync.
func parseFilterRule(word string) (filterRule, bool, error) {
	var r filterRule
	var p string
	switch {
	case strings.HasPrefix(word, "--include="):
		r.include, p = true, strings.TrimPrefix(word, "--include=")
	case strings.HasPrefix(word, "--exclude="):
		p = strings.TrimPrefix(word, "--exclude=")
	default:
		return r, false, nil
	}
	if p == "" || p == "/" || strings.ContainsAny(p, `[\`) {
		return r, true, fmt.Errorf("%w: filter rule %q is not supported by the in-process copier", ErrInvalid, word)
	}
	if strings.HasPrefix(p, "/") {
		r.anchored, p = true, p[1:]
	}
	if strings.HasSuffix(p, "/") {
		r.dirOnly, p = true, strings.TrimSuffix(p, "/")
	}
	r.pattern = p
	return r, true, nil
}

// matches reports whether the rule matches rel, a path relative to the top of the transfer
// ("a/b", never with a leading or trailing "/"), which is a directory if isDir.
func (r filterRule) matches(rel string, isDir bool) bool {
	if r.dirOnly && !isDir {
		return false
	}
	if base, ok := strings.CutSuffix(r.pattern, "/***"); ok {
		// rsync: "as if dir_name/ had been specified" or "dir_name/**".
		return isDir && matchPattern(base, r.anchored, rel) || matchPattern(base+"/**", r.anchored, rel)
	}
	return matchPattern(r.pattern, r.anchored, rel)
}

// matchPattern applies rsync's choice of what part of the path a pattern is matched against.
func matchPattern(pat string, anchored bool, rel string) bool {
	wild2 := strings.Contains(pat, "**")
	slashes := strings.Count(pat, "/")
	switch {
	case anchored:
		return wildmatch(pat, rel)
	case slashes == 0 && !wild2:
		return wildmatch(pat, rel[strings.LastIndexByte(rel, '/')+1:])
	case !wild2:
		// The last slashes+1 components.
		comps := strings.Split(rel, "/")
		if len(comps) < slashes+1 {
			return false
		}
		return wildmatch(pat, strings.Join(comps[len(comps)-slashes-1:], "/"))
	case strings.HasPrefix(pat, "**"):
		return wildmatch(pat, rel)
	default:
		// Try after every "/".
		for i := 0; ; {
			if wildmatch(pat, rel[i:]) {
				return true
			}
			j := strings.IndexByte(rel[i:], '/')
			if j < 0 {
				return false
			}
			i += j + 1
		}
	}
}

// wildmatch matches s against a pattern of literal characters, "*" (any run of characters
// but "/"), "**" (any run of characters) and "?" (one character but "/").
func wildmatch(p, s string) bool {
	for p != "" {
		switch p[0] {
		case '*':
			if strings.HasPrefix(p, "**") {
				rest := strings.TrimLeft(p, "*")
				if rest == "" {
					return true
				}
				for i := 0; i <= len(s); i++ {
					if wildmatch(rest, s[i:]) {
						return true
					}
				}
				return false
			}
			rest := p[1:]
			for i := 0; i <= len(s); i++ {
				if wildmatch(rest, s[i:]) {
					return true
				}
				if i < len(s) && s[i] == '/' {
					return false
				}
			}
			return false
		case '?':
			if s == "" || s[0] == '/' {
				return false
			}
			_, n := utf8.DecodeRuneInString(s)
			p, s = p[1:], s[n:]
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

// filterList is rsync's rule list: the first rule that matches decides; a path no rule
// matches is included.
type filterList []filterRule

func (l filterList) included(rel string, isDir bool) bool {
	for _, r := range l {
		if r.matches(rel, isDir) {
			return r.include
		}
	}
	return true
}

// copierOptions are the options of the file-install command line that the in-process copier
// implements: -a (recursive, symbolic links as links, permissions; owner, group and special
// files aside), --checksum (a file is sent when its content differs), --no-t and the
// out-format of its report.
var copierOptions = map[string]bool{
	installDelete:          true,
	"-a":                   true,
	"--checksum":           true,
	"--no-t":               true,
	"--out-format=%o %n%L": true,
}

// installFilter reads the file install's command line words ([installArgs]) into the rule
// list, refusing any word the copier does not implement.
func installFilter(includes []string) (filterList, error) {
	args, err := installArgs(includes)
	if err != nil {
		return nil, err
	}
	var l filterList
	for _, w := range append([]string{installDelete}, args...) {
		r, ok, err := parseFilterRule(w)
		switch {
		case err != nil:
			return nil, err
		case ok:
			l = append(l, r)
		case !copierOptions[w]:
			return nil, fmt.Errorf("%w: the in-process copier does not implement %q", ErrInvalid, w)
		}
	}
	return l, nil
}
