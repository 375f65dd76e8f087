package keystore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// The exact text of cylc-auth-spec.md section 4.2, with the zmq_curve(7) server key.
func TestCertificateText(t *testing.T) {
	kp := mustPair(t, serverSecretZ85)
	now := time.Date(2025, 3, 4, 10, 11, 12, 123456789, time.UTC)
	wantPub := `#   ****  Generated on 2025-03-04 10:11:12.123456 by pyzmq  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
`
	wantSec := `#   ****  Generated on 2025-03-04 10:11:12.123456 by pyzmq  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
curve
    public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
`
	if got := string(PublicCertificate(kp.Public, now)); got != wantPub {
		t.Errorf("public certificate:\n%s\nwant:\n%s", got, wantPub)
	}
	if got := string(SecretCertificate(&kp, now)); got != wantSec {
		t.Errorf("secret certificate:\n%s\nwant:\n%s", got, wantSec)
	}
}

// Python's str(datetime) drops the microseconds when they are zero.
func TestPyzmqTimestamp(t *testing.T) {
	for _, tc := range []struct {
		ns   int
		want string
	}{
		{0, "2024-12-31 23:59:59"},
		{999, "2024-12-31 23:59:59"},
		{1000, "2024-12-31 23:59:59.000001"},
		{5_000, "2024-12-31 23:59:59.000005"},
		{999_999_999, "2024-12-31 23:59:59.999999"},
	} {
		got := pyzmqTime(time.Date(2024, 12, 31, 23, 59, 59, tc.ns, time.UTC))
		if got != tc.want {
			t.Errorf("%d ns: %q, want %q", tc.ns, got, tc.want)
		}
	}
}

func TestCertificateRoundTrip(t *testing.T) {
	r := &countingReader{}
	now := time.Now()
	for i := 0; i < 50; i++ {
		kp, err := key.GenerateKeyPair(r)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertificate("pub", PublicCertificate(kp.Public, now))
		if err != nil || c.Public != kp.Public || c.HasSecret || !c.Secret.IsZero() || len(c.Metadata) != 0 {
			t.Fatalf("public round trip: %v %+v", err, c)
		}
		c, err = ParseCertificate("sec", SecretCertificate(&kp, now))
		if err != nil || c.Public != kp.Public || !c.HasSecret || *c.Secret.UnsafeBytes() != *kp.Secret.UnsafeBytes() {
			t.Fatalf("secret round trip: %v", err)
		}
	}
}

// No error about a secret file may carry the secret, in any encoding or any fmt verb.
func TestErrorsNeverLeakSecret(t *testing.T) {
	kp := mustPair(t, clientSecretZ85)
	other := mustPair(t, serverSecretZ85)
	now := time.Now()
	banner := fmt.Sprintf(secretBanner, pyzmqTime(now)) + "metadata\ncurve\n"
	pub := `    public-key = "` + clientPublicZ85 + "\"\n"
	sec := clientSecretZ85
	cases := map[string]string{
		"mismatch":         banner + `    public-key = "` + serverPublicZ85 + "\"\n" + `    secret-key = "` + sec + "\"\n",
		"bad char first":   banner + pub + `    secret-key = "~` + sec[1:] + "\"\n",
		"bad char last":    banner + pub + `    secret-key = "` + sec[:39] + "~\"\n",
		"short":            banner + pub + `    secret-key = "` + sec[:39] + "\"\n",
		"long":             banner + pub + `    secret-key = "` + sec + "0\"\n",
		"duplicate":        banner + pub + `    secret-key = "` + sec + "\"\n" + `    secret-key = "` + sec + "\"\n",
		"text after quote": banner + pub + `    secret-key = "` + sec + "\" " + sec + "\n",
		"no equals":        banner + pub + `    secret-key "` + sec + "\"\n",
		"no public":        banner + `    secret-key = "` + sec + "\"\n",
		"secret first":     banner + `    secret-key = "` + sec + "\"\n" + `    public-key = "` + other.Public.String() + "\"\n",
		"as public":        banner + `    public-key = "` + sec + "0\"\n",
	}
	needles := [][]byte{
		[]byte(sec), []byte(sec[:10]), []byte(sec[10:20]), []byte(sec[20:30]), []byte(sec[30:]),
		[]byte(hex.EncodeToString(kp.Secret.UnsafeBytes()[:])),
		[]byte(hex.EncodeToString(kp.Secret.UnsafeBytes()[:8])),
		[]byte(strings.ToUpper(hex.EncodeToString(kp.Secret.UnsafeBytes()[:8]))),
		kp.Secret.UnsafeBytes()[:8],
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := ParseCertificate("secret.key_secret", []byte(text))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if c != nil {
				t.Fatal("non-nil certificate with an error")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != "secret.key_secret" {
				t.Fatalf("not a *FileError naming the file: %#v", err)
			}
			if !strings.HasPrefix(err.Error(), "keystore: secret.key_secret:") {
				t.Errorf("message %q does not start with the file name", err)
			}
			var out bytes.Buffer
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
				fmt.Fprintf(&out, verb+"\n", err)
				fmt.Fprintf(&out, verb+"\n", fe)
				fmt.Fprintf(&out, verb+"\n", fe.Err)
			}
			for _, n := range needles {
				if bytes.Contains(out.Bytes(), n) {
					t.Fatalf("error output contains secret material %q:\n%s", n, out.String())
				}
			}
			t.Log(err)
		})
	}
}

func TestFileErrorMessage(t *testing.T) {
	_, err := ParseCertificate("x.key", []byte("curve\n    public-key = \"abc\"\n"))
	const want = "keystore: x.key:2: invalid key: public-key is 3 characters, want 40 Z85 characters"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if !errors.Is(err, ErrInvalidKey) {
		t.Error("does not wrap ErrInvalidKey")
	}
	_, err = ParseCertificate("y.key", nil)
	if err == nil || err.Error() != "keystore: y.key: empty certificate" || !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
}

func TestParseCertificateTooLarge(t *testing.T) {
	kp := mustPair(t, clientSecretZ85)
	big := append(PublicCertificate(kp.Public, time.Now()), bytes.Repeat([]byte("# padding\n"), MaxCertificateSize/10)...)
	if _, err := ParseCertificate("big", big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "big.key")
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCertificate(p); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// Exactly at the limit is fine.
	exact := append(PublicCertificate(kp.Public, time.Now()), '#')
	exact = append(exact, bytes.Repeat([]byte(" "), MaxCertificateSize-len(exact))...)
	if _, err := ParseCertificate("exact", exact); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

func TestReadCertificateNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCertificate(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: got %v, want ErrNotRegular", err)
	}
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Must return at once (a plain open would block waiting for a writer).
	if _, err := ReadCertificate(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: got %v, want ErrNotRegular", err)
	}
	// A FIFO swapped in between the Stat and the open: the open itself must not block
	// either (the Fstat after it then refuses the FIFO).
	opened := make(chan error, 1)
	go func() {
		f, err := openNoBlock(fifo)
		if err == nil {
			fi, serr := f.Stat()
			if serr == nil && fi.Mode().IsRegular() {
				serr = errors.New("a FIFO looks regular")
			}
			f.Close()
			err = serr
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Errorf("fifo open: %v", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the goroutine before failing.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Fatal("opening a FIFO blocked")
	}
	missing := filepath.Join(dir, "missing.key")
	_, err := ReadCertificate(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: got %v, want fs.ErrNotExist", err)
	}
	if want := "keystore: " + missing + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("missing: message %q, want %q", err, want)
	}
}

// A secret file readable by others loads, with a warning that names the file and mode but
// not the key; a private one, and a public one, give none.
func TestWorldReadableSecretWarns(t *testing.T) {
	dir := t.TempDir()
	kp := mustPair(t, clientSecretZ85)
	now := time.Now()
	sec := filepath.Join(dir, ClientSecretKeyFile)
	if err := WriteFileAtomic(sec, SecretCertificate(&kp, now), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, ServerPublicKeyFile), PublicCertificate(kp.Public, now), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCertificate(sec)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], sec) || !strings.Contains(c.Warnings[0], "0644") {
		t.Fatalf("warnings %q", c.Warnings)
	}
	if strings.Contains(c.Warnings[0], clientSecretZ85) {
		t.Fatal("warning carries the secret")
	}
	var logged []string
	warnf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	if _, _, err := LoadClientKeysWarn(dir, warnf); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || logged[0] != c.Warnings[0] {
		t.Fatalf("LoadClientKeysWarn logged %q", logged)
	}
	c, err = ReadCertificate(filepath.Join(dir, ServerPublicKeyFile))
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("public file: %v %q", err, c.Warnings)
	}
	if err := os.Chmod(sec, 0o600); err != nil {
		t.Fatal(err)
	}
	logged = nil
	if c, err := ReadCertificate(sec); err != nil || len(c.Warnings) != 0 {
		t.Fatalf("0600 secret: %v %q", err, c.Warnings)
	}
	if _, _, err := LoadClientKeysWarn(dir, warnf); err != nil || len(logged) != 0 {
		t.Fatalf("0600 secret: %v, logged %q", err, logged)
	}
}

func TestCreateCertificates(t *testing.T) {
	dir := t.TempDir()
	pubPath, secPath, err := CreateCertificates(dir, "server", &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	if pubPath != filepath.Join(dir, "server.key") || secPath != filepath.Join(dir, "server.key_secret") {
		t.Fatalf("paths %s %s", pubPath, secPath)
	}
	checkMode(t, pubPath, 0o600)
	checkMode(t, secPath, 0o600)
	pub, sec := readFile(t, pubPath), readFile(t, secPath)
	if l1, l2 := bytes.SplitN(pub, []byte("\n"), 2)[0], bytes.SplitN(sec, []byte("\n"), 2)[0]; !bytes.Equal(l1, l2) {
		t.Errorf("timestamps differ: %q %q", l1, l2)
	}
	cp, err := ReadCertificate(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ReadCertificate(secPath)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Public != cs.Public || cp.HasSecret || !cs.HasSecret {
		t.Fatal("public and secret certificates disagree")
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b"} {
		if _, _, err := CreateCertificates(dir, bad, nil); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

// ReadPublicKeys reads what pyzmq's load_certificates reads (testdata/store/README).
func TestReadPublicKeys(t *testing.T) {
	files, err := ReadPublicKeys("testdata/store")
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := []string{"a.key", "b-same-key-as-a.key", "c.key", "e-secret-in-public-name.key"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("files %q, want %q", names, want)
	}
	if files[0].Public != mustPublic(t, clientPublicZ85) || files[1].Public != files[0].Public ||
		files[2].Public != mustPublic(t, serverPublicZ85) || files[3].Public != files[2].Public {
		t.Error("wrong keys")
	}
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "broken.key:9:") {
		t.Fatalf("error %v, want broken.key:9 ErrInvalidKey", err)
	}
	if _, err := ReadPublicKeys("testdata/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

// The example's pair again, through the exported path a caller would use.
func TestCertificateWipe(t *testing.T) {
	kp := mustPair(t, clientSecretZ85)
	c, err := ParseCertificate("s", SecretCertificate(&kp, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c.Wipe()
	if !c.Secret.IsZero() {
		t.Fatal("Wipe left the secret")
	}
}

// Metadata entries are kept in order, with czmq's quoting and pyzmq's unquoted values.
func TestCertificateMetadata(t *testing.T) {
	for file, want := range map[string][]Property{
		"czmq":                          {{"name", "server one"}, {"role", "scheduler"}},
		"pyzmq-metadata.key_secret":     {{"name", "cylc"}, {"email", "a b@c"}},
		"metadata-named-public-key.key": {{"public-key", serverPublicZ85}},
		"pyzmq.key":                     nil,
	} {
		c, err := ReadCertificate(filepath.Join("testdata/certs", file))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.Metadata) != fmt.Sprint(want) {
			t.Errorf("%s: metadata %q, want %q", file, c.Metadata, want)
		}
	}
}

// Lines made only of Unicode spaces are neither blank (trimSpace removes ASCII blanks only)
// nor words: they once made the first-word split return nothing and the parser panic.
func TestParseCertificateUnicodeSpaceLines(t *testing.T) {
	kp := mustPair(t, clientSecretZ85)
	valid := string(PublicCertificate(kp.Public, time.Now()))
	for _, text := range []string{
		"\u00a0", "\u00a0\n", "\u0085\n", "\u3000", "curve\n\u0085\n", "curve\n    \u2028\n",
		"\u00a0\n" + valid, valid + "\u00a0\n",
	} {
		c, err := ParseCertificate("x.key", []byte(text))
		if err == nil {
			// Only a certificate with its key lines intact may parse.
			if c.Public != kp.Public {
				t.Errorf("%q: parsed with public key %v", text, c.Public)
			}
			continue
		}
		if c != nil || !errors.Is(err, ErrNoPublicKey) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, %v", text, c, err)
		}
	}
}
