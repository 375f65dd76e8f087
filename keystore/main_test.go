package keystore

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/curvezmq/curvezmq/internal/pyzmq"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// helperEnv selects a helper mode when the test binary is re-executed as a child process
// (see runHelper); the test functions never run in a child.
const helperEnv = "KEYSTORE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// helpers maps a helper mode to the child side of a multi-process test; test files
// register theirs in init.
var helpers = map[string]func() error{}

// runHelper runs the child side of a multi-process test and returns its exit status.
func runHelper(mode string) int {
	h, ok := helpers[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "helper: unknown mode %q\n", mode)
		return 2
	}
	if err := h(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// helperCmd returns a command re-executing this test binary in helper mode, with extra
// environment variables.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// waitLine reads one line from r, failing the test after a generous deadline (the child is
// then killed by the caller's cleanup).
func waitLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case v := <-ch:
		if v.err != nil {
			t.Fatalf("reading from helper: %v (got %q)", v.err, v.s)
		}
		return strings.TrimSuffix(v.s, "\n")
	case <-time.After(60 * time.Second):
		t.Fatal("helper did not answer within 60s")
		return ""
	}
}

// Test key pairs of zmq_curve(7), as in curve/key/testdata/keypairs.txt.
const (
	clientPublicZ85 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	clientSecretZ85 = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
	serverPublicZ85 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	serverSecretZ85 = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

func mustPair(t testing.TB, secretZ85 string) key.KeyPair {
	t.Helper()
	s, err := key.ParseSecretKey([]byte(secretZ85))
	if err != nil {
		t.Fatal(err)
	}
	return key.NewKeyPair(s)
}

func mustPublic(t testing.TB, z85 string) key.PublicKey {
	t.Helper()
	p, err := key.ParsePublicKey([]byte(z85))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// countingReader is a deterministic randomness source for key generation.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n*31 + 7
	}
	return len(p), nil
}

// snapshot returns every regular file under dir (relative path → content) and every
// entry's mode, for byte-for-byte comparisons.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("%v %q", fi.Mode(), b)
		} else {
			out[rel] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(a, b map[string]string) string {
	var diffs []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diffs = append(diffs, "removed "+k)
		} else if v != w {
			diffs = append(diffs, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, "added "+k)
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pythonZMQ returns the interpreter that imports zmq, else skips the test.
func pythonZMQ(t *testing.T) string { return pyzmq.Python(t, "golden pyzmq test") }

// runPython runs a Python program with args and returns its stdout.
func runPython(t *testing.T, py, prog string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, append([]string{"-c", prog}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes()
}

// runPythonFile returns a command running a Python script with args.
func runPythonFile(py, script string, args ...string) *exec.Cmd {
	return exec.Command(py, append([]string{script}, args...)...)
}
