package keystore

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// seedFiles adds every regular file under the testdata directories (MANIFESTs aside) as a
// seed and returns how many it added.
func seedFiles(f *testing.F, dirs ...string) int {
	n := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || d.Name() == "MANIFEST" || strings.HasSuffix(d.Name(), ".py") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f.Add(b)
			n++
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	return n
}

// Every message ParseCertificate can give, after "keystore: fuzz[:line]: ": fixed text and
// numbers, never input.
var certErrorTexts = regexp.MustCompile(`^(?:` + strings.Join([]string{
	`empty certificate`,
	`no public-key`,
	`invalid key: (?:public|secret)-key is \d+ characters, want 40 Z85 characters`,
	`invalid key: (?:public|secret)-key has a character outside the Z85 alphabet at offset \d+`,
	`invalid key: (?:public|secret)-key is not valid Z85`,
	`secret-key does not match public-key`,
	`malformed line: (?:public|secret)-key has no '='`,
	`malformed line: second (?:public|secret)-key \(the first is on line \d+\)`,
	`malformed line: text after the closing quote`,
	`file too large: \d+ bytes, the limit is \d+`,
}, "|") + `)$`)

var certErrorPrefix = regexp.MustCompile(`^keystore: fuzz(?::(\d+))?: `)

func FuzzParseCertificate(f *testing.F) {
	if n := seedFiles(f, "testdata/certs", "testdata/pyzmq", "testdata/store"); n == 0 {
		f.Fatal("no seeds")
	}
	now := time.Date(2025, 3, 4, 10, 11, 12, 123456000, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCertificate("fuzz", data)
		if err != nil {
			if c != nil {
				t.Fatal("certificate returned with an error")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != "fuzz" || fe.Line < 0 || fe.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error %#v", err)
			}
			msg := err.Error()
			loc := certErrorPrefix.FindStringIndex(msg)
			if loc == nil || !certErrorTexts.MatchString(msg[loc[1]:]) {
				t.Fatalf("unexpected error text (it may carry input): %q", msg)
			}
			return
		}
		if c.HasSecret {
			if c.Secret.Public() != c.Public {
				t.Fatal("accepted a mismatched pair")
			}
		} else if !c.Secret.IsZero() {
			t.Fatal("a secret without HasSecret")
		}
		// Re-marshalling as pyzmq's text gives the same keys back.
		p, err := ParseCertificate("pub", PublicCertificate(c.Public, now))
		if err != nil || p.Public != c.Public || p.HasSecret {
			t.Fatalf("public round trip: %v", err)
		}
		if c.HasSecret {
			kp := key.KeyPair{Public: c.Public, Secret: c.Secret}
			s, err := ParseCertificate("sec", SecretCertificate(&kp, now))
			if err != nil || s.Public != c.Public || !s.HasSecret || *s.Secret.UnsafeBytes() != *c.Secret.UnsafeBytes() {
				t.Fatalf("secret round trip: %v", err)
			}
		}
	})
}

func FuzzParseContact(f *testing.F) {
	if n := seedFiles(f, "testdata/contact"); n == 0 {
		f.Fatal("no seeds")
	}
	f.Add([]byte("=x\nA=1\n"))
	f.Add([]byte("CYLC_SUITE_HOST=h\nSUITSUITEE=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseContact(data)
		if err != nil {
			var fe *FileError
			if c != nil || !errors.As(err, &fe) || fe.Path != ContactFileName {
				t.Fatalf("error %#v with %v", err, c)
			}
			return
		}
		for k := range c {
			if strings.Contains(k, "SUITE") {
				t.Fatalf("key %q kept SUITE", k)
			}
		}
		out, err := c.Marshal()
		if err != nil {
			if _, empty := c[""]; !empty {
				t.Fatalf("cannot write back what was read: %v", err)
			}
			return
		}
		c2, err := ParseContact(out)
		if err != nil || !maps.Equal(c, c2) {
			t.Fatalf("round trip: %v\n%q\n%q", err, c, c2)
		}
		if out2, err := c2.Marshal(); err != nil || !bytes.Equal(out, out2) {
			t.Fatal("Marshal is not stable")
		}
	})
}
