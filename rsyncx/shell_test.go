package rsyncx

import (
	"errors"
	"os/exec"
	"slices"
	"testing"
)

// The expected words come from Python's shlex.split, which Cylc uses on its command settings.
func TestSplitCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"ssh -oBatchMode=yes -oConnectTimeout=10", []string{"ssh", "-oBatchMode=yes", "-oConnectTimeout=10"}},
		{"  ssh   -p 2222\thost\n", []string{"ssh", "-p", "2222", "host"}},
		{"ssh -o 'ProxyCommand ssh -W %h:%p jump'", []string{"ssh", "-o", "ProxyCommand ssh -W %h:%p jump"}},
		{`ssh -o "ProxyCommand ssh -W %h:%p jump"`, []string{"ssh", "-o", "ProxyCommand ssh -W %h:%p jump"}},
		{"a '' b", []string{"a", "", "b"}},
		{`a "" b`, []string{"a", "", "b"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`"a\"b" "c\\d" "e\$f" "g\h"`, []string{`a"b`, `c\d`, `e\$f`, `g\h`}},
		{`'a\b' 'it'\''s'`, []string{`a\b`, "it's"}},
		{`x'y'"z"w`, []string{"xyzw"}},
		{"#notacomment a#b", []string{"#notacomment", "a#b"}},
		{"", nil},
		{"   ", nil},
		{"a\\\nb", []string{"a\nb"}},
		{"é ü", []string{"é", "ü"}},
		{"$HOME/bin/ssh ~/x `id` $(id)", []string{"$HOME/bin/ssh", "~/x", "`id`", "$(id)"}},
	} {
		got, err := SplitCommand(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"'abc", `"abc`, `abc\`, `"abc\`} {
		if got, err := SplitCommand(bad); !errors.Is(err, ErrInvalid) || got != nil {
			t.Errorf("SplitCommand(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}
}

// The expected quotes come from Python's shlex.quote.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "''",
		"abc":                   "abc",
		"a b":                   "'a b'",
		"it's":                  `'it'"'"'s'`,
		"$HOME/x":               "'$HOME/x'",
		`exec "$0" "$@"`:        `'exec "$0" "$@"'`,
		"a@b%c+d=e:f,g.h/i-j_k": "a@b%c+d=e:f,g.h/i-j_k",
		"é":                     "'é'",
		"~x":                    "'~x'",
		"a\nb":                  "'a\nb'",
		"*":                     "'*'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestQuoteRoundTrip has a real POSIX shell read quoted words back: each must come out as the
// one word that went in, unexpanded.
func TestQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"", "plain", "two words", "it's", `"dq"`, "$HOME", "$(id)", "`id`", "~", "*", "a\nb", "\\", "'", "''", "é", "!x", ";", "&&", "|", ">f", "#c"}
	script := `for a in "$@"; do printf '%s\0' "$a"; done`
	line := ""
	for _, w := range words {
		line += " " + Quote(w)
	}
	// The shell parses the quoted line, as a remote shell parses what ssh sends.
	out, err := exec.Command(sh, "-c", "set --"+line+"; "+script).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := splitNUL(string(out))
	if !slices.Equal(got, words) {
		t.Errorf("shell read back %q, want %q", got, words)
	}
}

func splitNUL(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for s[i] != 0 {
			i++
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return out
}

func FuzzSplitQuote(f *testing.F) {
	for _, s := range []string{"ssh -o 'a b'", `"x\"y"`, "a\\ b", "''", "it's"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Quoting any word and splitting it back gives the word.
		if got, err := SplitCommand(Quote(s)); err != nil || len(got) != 1 || got[0] != s {
			t.Fatalf("SplitCommand(Quote(%q)) = %q, %v", s, got, err)
		}
		// Splitting never panics; re-quoting the words and splitting again is stable.
		words, err := SplitCommand(s)
		if err != nil {
			if words != nil {
				t.Fatalf("words %q with error %v", words, err)
			}
			return
		}
		var line string
		for _, w := range words {
			line += Quote(w) + " "
		}
		again, err := SplitCommand(line)
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("re-split of %q = %q, %v; want %q", line, again, err, words)
		}
	})
}
