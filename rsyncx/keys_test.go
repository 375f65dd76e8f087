package rsyncx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "remote-init", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRemoteInitOutput(t *testing.T) {
	cert := readTestdata(t, "cert.txt")
	for _, name := range []string{"cylc8-success.out", "banner-success.out"} {
		got, err := ParseRemoteInitOutput(0, readTestdata(t, name))
		if err != nil || !bytes.Equal(got, cert) {
			t.Errorf("%s: got %q, %v; want the certificate verbatim", name, got, err)
		}
	}

	for _, c := range []struct {
		name   string
		code   int
		stdout string
		want   string // the payload, or "" for an error
	}{
		// Greedy, as Cylc's regular expression: from the first KEYSTART to the last KEYEND.
		{"greedy", 0, "xKEYSTARTaKEYENDbKEYSTARTcKEYENDy", "aKEYENDbKEYSTARTc"},
		{"crlf kept", 0, "KEYSTART\r\na\r\nKEYEND", "\r\na\r\n"},
		{"binary kept", 0, "KEYSTART\x00\xff\xfeKEYEND", "\x00\xff\xfe"},
		{"KEYEND before KEYSTART only", 0, "KEYENDxKEYSTARTy", ""},
		{"KEYEND before and after", 0, "KEYENDKEYSTARTxKEYEND", "x"},
	} {
		got, err := ParseRemoteInitOutput(c.code, []byte(c.stdout))
		if c.want == "" {
			if err == nil || got != nil {
				t.Errorf("%s: got %q, %v; want an error", c.name, got, err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestParseRemoteInitOutputRejects(t *testing.T) {
	success := readTestdata(t, "cylc8-success.out")
	for _, c := range []struct {
		name        string
		code        int
		stdout      []byte
		unreachable bool
		badOutput   bool
	}{
		{"no KEYSTART, exit 0 (Cylc up to 8.6.4)", 0, readTestdata(t, "failed-exit0.out"), false, true},
		{"empty output", 0, nil, false, true},
		{"cut short after KEYSTART", 0, readTestdata(t, "partial.out"), false, true},
		{"nothing between the markers", 0, []byte("KEYSTARTKEYEND"), false, true},
		{"markers overlapping", 0, []byte("KEYSTARTEND"), false, true},
		{"too long", 0, append(bytes.Repeat([]byte("x"), MaxRemoteInitOutput), success...), false, true},
		{"key but exit 1", 1, success, false, false},
		{"key but exit 3", 3, success, false, false},
		{"killed", -1, success, false, false},
		{"ssh exit 255", 255, success, true, false},
		{"ssh exit 255, partial", 255, readTestdata(t, "partial.out"), true, false},
	} {
		got, err := ParseRemoteInitOutput(c.code, c.stdout)
		if err == nil || got != nil {
			t.Errorf("%s: got %q, %v; want an error and no key", c.name, got, err)
			continue
		}
		if errors.Is(err, ErrUnreachable) != c.unreachable {
			t.Errorf("%s: %v: ErrUnreachable = %v, want %v", c.name, err, !c.unreachable, c.unreachable)
		}
		if errors.Is(err, ErrBadOutput) != c.badOutput {
			t.Errorf("%s: %v: ErrBadOutput = %v, want %v", c.name, err, !c.badOutput, c.badOutput)
		}
		var xe *ExitError
		if errors.As(err, &xe) != (c.code != 0) {
			t.Errorf("%s: %v: ExitError expected exactly for a non-zero status", c.name, err)
		}
		if !strings.HasPrefix(err.Error(), "rsyncx: ") {
			t.Errorf("%s: error %q lacks the package prefix", c.name, err)
		}
	}
}

// cylcPattern is Cylc's regular expression, KEYSTART((.|\n|\r)*)KEYEND; in Go, (?s) makes
// "." match newlines too, and invalid UTF-8 bytes still match ".", one at a time.
var cylcPattern = regexp.MustCompile(`(?s)KEYSTART(.*)KEYEND`)

func FuzzParseRemoteInitOutput(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "remote-init"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".out") {
			b := readTestdata(f, e.Name())
			f.Add(0, b)
			f.Add(255, b)
			seeds++
		}
	}
	if seeds == 0 {
		f.Fatal("no seeds in testdata/remote-init")
	}
	f.Add(0, []byte("KEYSTARTaKEYENDbKEYEND"))
	f.Add(1, []byte("KEYSTARTaKEYEND"))
	f.Fuzz(func(t *testing.T, code int, stdout []byte) {
		got, err := ParseRemoteInitOutput(code, stdout)
		if err != nil {
			if got != nil {
				t.Fatalf("key %q returned with error %v", got, err)
			}
			if code == 255 && !errors.Is(err, ErrUnreachable) {
				t.Fatalf("exit 255 not unreachable: %v", err)
			}
			if m := cylcPattern.FindSubmatchIndex(stdout); code == 0 && len(stdout) <= MaxRemoteInitOutput && m != nil && m[3] > m[2] {
				t.Fatalf("rejected output that Cylc accepts: %v: %q", err, stdout)
			}
			return
		}
		// Success means Cylc's rule held, and the key is Cylc's payload.
		if code != 0 || len(stdout) > MaxRemoteInitOutput {
			t.Fatalf("accepted code %d, %d bytes", code, len(stdout))
		}
		m := cylcPattern.FindSubmatchIndex(stdout)
		if m == nil || !bytes.Equal(got, stdout[m[2]:m[3]]) || len(got) == 0 {
			t.Fatalf("key %q differs from Cylc's payload (match %v) in %q", got, m, stdout)
		}
		// The key is a copy.
		if len(got) > 0 && len(stdout) > 0 && &got[0] == &stdout[m[2]] {
			t.Fatal("key aliases stdout")
		}
	})
}
