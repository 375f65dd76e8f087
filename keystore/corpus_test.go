package keystore

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// manifestEntry is one line of a testdata MANIFEST: "file | result | detail | why".
type manifestEntry struct{ file, result, detail, why string }

func readManifest(t testing.TB, dir string) []manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 4 {
			t.Fatalf("bad MANIFEST line %q", line)
		}
		out = append(out, manifestEntry{parts[0], parts[1], parts[2], parts[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s/MANIFEST is empty", dir)
	}
	// Every file has a line and every line a file.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files, listed []string
	for _, e := range entries {
		if e.Name() != "MANIFEST" {
			files = append(files, e.Name())
		}
	}
	for _, m := range out {
		listed = append(listed, m.file)
	}
	slices.Sort(listed)
	if !slices.Equal(files, listed) {
		t.Fatalf("%s: files %q\nMANIFEST lists %q", dir, files, listed)
	}
	return out
}

var sentinels = map[string]error{
	"ErrEmpty":       ErrEmpty,
	"ErrNoPublicKey": ErrNoPublicKey,
	"ErrInvalidKey":  ErrInvalidKey,
	"ErrMismatch":    ErrMismatch,
	"ErrMalformed":   ErrMalformed,
	"ErrTooLarge":    ErrTooLarge,
}

// The variation corpus of protocol-anchors.md section 3.3: one subtest per file, accepted
// or refused as testdata/certs/MANIFEST says, and why.
func TestCorpus(t *testing.T) {
	keys := map[string]string{
		"client": clientPublicZ85,
		"server": serverPublicZ85,
		"hash":   "n/LDW)Q2cI0?LfrWJgqKcs{Uk8Uv/zy#Z-p-u]EL",
		"fuzz":   "{{k*81)yMWEF{/BxdMd[5RL^qRFxBgoL<8m.D^KD",
	}
	for _, m := range readManifest(t, "testdata/certs") {
		t.Run(m.file, func(t *testing.T) {
			path := filepath.Join("testdata/certs", m.file)
			c, err := ReadCertificate(path)
			switch m.result {
			case "public", "secret":
				if err != nil {
					t.Fatalf("%s: refused: %v", m.why, err)
				}
				want, ok := keys[m.detail]
				if !ok {
					t.Fatalf("MANIFEST names unknown key %q", m.detail)
				}
				if c.Public.String() != want {
					t.Fatalf("%s: public key %s, want %s", m.why, c.Public, want)
				}
				if c.HasSecret != (m.result == "secret") {
					t.Fatalf("%s: HasSecret = %v", m.why, c.HasSecret)
				}
				if c.HasSecret && c.Secret.Public() != c.Public {
					t.Fatal("secret does not match")
				}
			default:
				want, ok := sentinels[m.result]
				if !ok {
					t.Fatalf("MANIFEST names unknown result %q", m.result)
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s: got %v, want %v", m.why, err, want)
				}
				if c != nil {
					t.Fatal("certificate returned with an error")
				}
				var fe *FileError
				line, _ := strconv.Atoi(m.detail)
				if !errors.As(err, &fe) || fe.Path != path || fe.Line != line {
					t.Fatalf("error %q: want file %s line %d", err, path, line)
				}
				t.Logf("%s: %v", m.why, err)
			}
		})
	}
}

// The contact-file corpus: testdata/contact/MANIFEST.
func TestContactCorpus(t *testing.T) {
	for _, m := range readManifest(t, "testdata/contact") {
		t.Run(m.file, func(t *testing.T) {
			data := readFile(t, filepath.Join("testdata/contact", m.file))
			c, err := ParseContact(data)
			if m.result != "ok" {
				want := sentinels[m.result]
				var fe *FileError
				line, _ := strconv.Atoi(m.detail)
				if !errors.Is(err, want) || !errors.As(err, &fe) || fe.Line != line || c != nil {
					t.Fatalf("%s: got %v (%v), want %v at line %d", m.why, err, c, want, line)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", m.why, err)
			}
			host, port, err := c.HostPort()
			if m.detail == "-" {
				if err == nil {
					t.Fatalf("%s: HostPort gave %s:%d", m.why, host, port)
				}
				return
			}
			if err != nil || host+":"+strconv.Itoa(port) != m.detail {
				t.Fatalf("%s: HostPort %s:%d %v, want %s", m.why, host, port, err, m.detail)
			}
		})
	}
	c, err := ParseContact(readFile(t, "testdata/contact/cylc-8.0b1-suite.contact"))
	if err != nil {
		t.Fatal(err)
	}
	if c[ContactID] != "" || c["CYLC_WORKFLOW_NAME"] != "demo" || c["CYLC_WORKFLOW_PROCESS"] != "12345 cylc play demo" {
		t.Errorf("SUITE keys not mapped: %v", c)
	}
	c, err = ParseContact(readFile(t, "testdata/contact/cylc-8.contact"))
	if err != nil {
		t.Fatal(err)
	}
	if c[ContactCylcPath] != "None" || c[ContactCommand] != "/home/me/.conda/envs/cylc/bin/python3 /home/me/.conda/envs/cylc/bin/cylc play demo/run1 --host=localhost" || len(c) != 14 {
		t.Errorf("Cylc 8 contact file: %v", c)
	}
	// A file Cylc wrote reads back to the same bytes through our writer.
	out, err := c.Marshal()
	if err != nil || string(out) != string(readFile(t, "testdata/contact/cylc-8.contact")) {
		t.Errorf("re-marshalled Cylc contact file differs: %v\n%s", err, out)
	}
}
