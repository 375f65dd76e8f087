package rsyncx

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func contactFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tar", "cylc-contact.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContactTarRoundTrip(t *testing.T) {
	contact := contactFixture(t)
	srv := filepath.Join(t.TempDir(), ".service")
	if err := os.Mkdir(srv, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, "contact"), contact, 0o600); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := WriteContactTar(&stream, srv); err != nil {
		t.Fatal(err)
	}
	// One member, as Cylc sends it.
	tr := tar.NewReader(bytes.NewReader(stream.Bytes()))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != ".service/contact" || hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o600 || hdr.Size != int64(len(contact)) {
		t.Fatalf("first member %+v, %v", hdr, err)
	}
	if _, err := tr.Next(); err == nil {
		t.Fatal("more than one member")
	}

	got, err := ReadContactTar(bytes.NewReader(stream.Bytes()))
	if err != nil || !bytes.Equal(got, contact) {
		t.Fatalf("ReadContactTar = %q, %v", got, err)
	}
	runDir := t.TempDir()
	if err := InstallContact(runDir, got); err != nil {
		t.Fatal(err)
	}
	checkContact(t, runDir, contact)
}

func checkContact(t *testing.T, runDir string, want []byte) {
	t.Helper()
	p := filepath.Join(runDir, ".service", "contact")
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("contact = %q, %v; want %q", got, err, want)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("contact mode %v, %v; want 0600", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range ents {
		if e.Name() != "contact" {
			t.Errorf("left in .service: %s", e.Name())
		}
	}
}

// TestReadCylcTar reads the stream as Python's tarfile writes it for Cylc (PAX, one 10 KiB
// record).
func TestReadCylcTar(t *testing.T) {
	stream, err := os.ReadFile(filepath.Join("testdata", "tar", "cylc-contact.tar"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadContactTar(bytes.NewReader(stream))
	if err != nil || !bytes.Equal(got, contactFixture(t)) {
		t.Fatalf("ReadContactTar = %q, %v", got, err)
	}
}

// TestPythonReadsOurTar has Python's tarfile, in the streaming mode Cylc's remote-init uses,
// read what WriteContactTar writes.
func TestPythonReadsOurTar(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	contact := contactFixture(t)
	srv := t.TempDir()
	if err := os.WriteFile(filepath.Join(srv, "contact"), contact, 0o600); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := WriteContactTar(&stream, srv); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", `
import sys, tarfile
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as t:
    for m in t:
        print(m.name, oct(m.mode), m.isreg(), m.size)
        sys.stdout.write(t.extractfile(m).read().decode())
`)
	cmd.Stdin = &stream
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := ".service/contact 0o600 True " + strconv.Itoa(len(contact)) + "\n" + string(contact)
	if string(out) != want {
		t.Errorf("python read\n%q\nwant\n%q", out, want)
	}
}

// retype changes the type flag of the header block at off and fixes its checksum, to make
// headers archive/tar refuses to write.
func retype(b []byte, off int, typ byte) []byte {
	h := b[off : off+512]
	h[156] = typ
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

type member struct {
	hdr  tar.Header
	data string
}

func makeTar(t testing.TB, close bool, ms ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h := m.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o600
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(m.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if m.data != "" {
			if _, err := tw.Write([]byte(m.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if close {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		tw.Flush()
	}
	return b.Bytes()
}

func TestReadContactTarAccepts(t *testing.T) {
	for _, c := range []struct {
		name   string
		stream []byte
		want   []byte
	}{
		{"empty stream", nil, nil},
		{"empty archive", makeTar(t, true), nil},
		{"empty contact", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact"}}), []byte{}},
		{"garbage after the archive", append(makeTar(t, true, member{tar.Header{Name: ".service/contact"}, "x"}), "garbage"...), []byte("x")},
	} {
		got, err := ReadContactTar(bytes.NewReader(c.stream))
		if err != nil || !bytes.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestReadContactTarRejects(t *testing.T) {
	reg := func(name, data string) member { return member{tar.Header{Name: name}, data} }
	huge := strings.Repeat("x", maxTarStream)
	for _, c := range []struct {
		name   string
		stream []byte
	}{
		{"absolute", makeTar(t, true, reg("/.service/contact", "x"))},
		{"absolute elsewhere", makeTar(t, true, reg("/etc/cron.d/x", "x"))},
		{"dot dot", makeTar(t, true, reg("../.service/contact", "x"))},
		{"dot dot inside", makeTar(t, true, reg(".service/../.service/contact", "x"))},
		{"dot dot at the end", makeTar(t, true, reg(".service/..", "x"))},
		{"leading dot slash", makeTar(t, true, reg("./.service/contact", "x"))},
		{"other member", makeTar(t, true, reg(".service/server.key_secret", "x"))},
		{"other member after the contact", makeTar(t, true, reg(".service/contact", "x"), reg("x", "y"))},
		{"contact twice", makeTar(t, true, reg(".service/contact", "x"), reg(".service/contact", "y"))},
		{"directory first", makeTar(t, true, member{hdr: tar.Header{Name: ".service/", Typeflag: tar.TypeDir, Mode: 0o700}}, reg(".service/contact", "x"))},
		{"contact as a directory", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact", Typeflag: tar.TypeDir, Mode: 0o700}})},
		{"symlink", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}})},
		{"hard link", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact", Typeflag: tar.TypeLink, Linkname: "../../x"}})},
		{"device", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}})},
		{"fifo", makeTar(t, true, member{hdr: tar.Header{Name: ".service/contact", Typeflag: tar.TypeFifo}})},
		{"too large", makeTar(t, false, member{hdr: tar.Header{Name: ".service/contact", Size: MaxContactSize + 1}})},
		{"cut short", makeTar(t, false, member{hdr: tar.Header{Name: ".service/contact", Size: 1000}, data: "abc"})[:512+3]},
		{"pax path escape", retype(makeTar(t, true, reg("pax", paxRecord("path", "../../.ssh/authorized_keys")), reg(".service/contact", "x")), 0, tar.TypeXHeader)},
		{"huge pax header", retype(makeTar(t, true, reg("pax", paxRecord("comment", huge)), reg(".service/contact", "x")), 0, tar.TypeXHeader)},
		{"global pax header", retype(makeTar(t, true, reg("pax", paxRecord("comment", "x")), reg(".service/contact", "x")), 0, tar.TypeXGlobalHeader)},
		{"GNU long name escape", retype(makeTar(t, true, reg("longname", "../../x\x00"), reg(".service/contact", "x")), 0, tar.TypeGNULongName)},
		// A PAX header archive/tar takes (under 1 MiB), but the stream passes our limit.
		{"stream too large", retype(makeTar(t, true, reg("pax", paxRecord("comment", huge[:maxTarStream-200])), reg(".service/contact", "x")), 0, tar.TypeXHeader)},
		{"not a tar", []byte(strings.Repeat("not a tar stream ", 64))},
	} {
		got, err := ReadContactTar(bytes.NewReader(c.stream))
		if !errors.Is(err, ErrTar) || got != nil {
			t.Errorf("%s: %q, %v; want ErrTar", c.name, got, err)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// paxRecord formats one PAX extended header record: "<length> <key>=<value>\n".
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for len(strconv.Itoa(n))+len(rec) != n {
		n = len(strconv.Itoa(n)) + len(rec)
	}
	return strconv.Itoa(n) + rec
}

func TestInstallContact(t *testing.T) {
	runDir := t.TempDir()
	if err := InstallContact(runDir, []byte("old\n")); err != nil {
		t.Fatal(err)
	}
	checkContact(t, runDir, []byte("old\n"))
	if fi, err := os.Stat(filepath.Join(runDir, ".service")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf(".service: %v, %v; want 0700", fi.Mode(), err)
	}
	// Replaced whole.
	if err := InstallContact(runDir, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	checkContact(t, runDir, []byte("new\n"))

	if err := InstallContact(t.TempDir(), make([]byte, MaxContactSize+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized contact: %v", err)
	}

	// A .service that is a symbolic link is refused, and nothing is written through it.
	runDir = t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(runDir, ".service")); err != nil {
		t.Fatal(err)
	}
	if err := InstallContact(runDir, []byte("x")); !errors.Is(err, ErrInvalid) {
		t.Errorf("symlinked .service: %v", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("wrote through the symlink: %v", ents)
	}
}

func TestWriteContactTarErrors(t *testing.T) {
	srv := t.TempDir()
	if err := WriteContactTar(&bytes.Buffer{}, srv); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing contact: %v", err)
	}
	if err := os.Mkdir(filepath.Join(srv, "contact"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteContactTar(&bytes.Buffer{}, srv); !errors.Is(err, ErrInvalid) {
		t.Errorf("contact is a directory: %v", err)
	}
	srv = t.TempDir()
	if err := os.WriteFile(filepath.Join(srv, "contact"), make([]byte, MaxContactSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteContactTar(&bytes.Buffer{}, srv); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized contact: %v", err)
	}
}

func FuzzReadContactTar(f *testing.F) {
	stream, err := os.ReadFile(filepath.Join("testdata", "tar", "cylc-contact.tar"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stream)
	f.Add(makeTar(f, true, member{tar.Header{Name: ".service/contact"}, "x"}))
	f.Add(makeTar(f, true, member{tar.Header{Name: "../x"}, "x"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadContactTar(bytes.NewReader(b))
		if err != nil {
			if got != nil {
				t.Fatalf("contact %q with error %v", got, err)
			}
			return
		}
		if len(got) > MaxContactSize {
			t.Fatalf("contact of %d bytes accepted", len(got))
		}
		// What was accepted is exactly one regular .service/contact member, or nothing.
		tr := tar.NewReader(bytes.NewReader(b))
		hdr, err := tr.Next()
		if got == nil {
			if err == nil {
				t.Fatalf("no contact returned, but a member %q exists", hdr.Name)
			}
			return
		}
		if err != nil || hdr.Name != ContactMember {
			t.Fatalf("contact returned from a stream whose first member is %v, %v", hdr, err)
		}
	})
}
