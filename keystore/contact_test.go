package keystore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func fullContact() Contact {
	return Contact{
		ContactAPI:         ContactAPIVersion,
		ContactVersion:     "0.1.0",
		ContactCommand:     "curvezmq scheduler --run-dir /home/me/curvezmq-run/flow 'an arg'",
		ContactHost:        "vm.example.org",
		ContactID:          "flow/run1",
		ContactOwner:       "me",
		ContactPID:         "4242",
		ContactPort:        "43001",
		ContactPublishPort: "43002",
		ContactRunDir:      "/home/me/curvezmq-run/flow/run1",
		ContactUUID:        "1e5b8d4c-6a0f-4f4e-9c55-3f0c1b7b9a10",
		ContactCylcPath:    "None",
		ContactSSHCommand:  "ssh -oBatchMode=yes -oConnectTimeout=10",
		ContactLoginShell:  "True",
	}
}

// Cylc's format: sorted KEY=VALUE lines, no quoting; the file is 0600 and reads back.
func TestWriteContact(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	if err := os.Mkdir(srv, 0o700); err != nil {
		t.Fatal(err)
	}
	c := fullContact()
	if err := WriteContact(srv, c); err != nil {
		t.Fatal(err)
	}
	want := `CYLC_API=5
CYLC_VERSION=0.1.0
CYLC_WORKFLOW_COMMAND=curvezmq scheduler --run-dir /home/me/curvezmq-run/flow 'an arg'
CYLC_WORKFLOW_HOST=vm.example.org
CYLC_WORKFLOW_ID=flow/run1
CYLC_WORKFLOW_OWNER=me
CYLC_WORKFLOW_PID=4242
CYLC_WORKFLOW_PORT=43001
CYLC_WORKFLOW_PUBLISH_PORT=43002
CYLC_WORKFLOW_RUN_DIR_ON_WORKFLOW_HOST=/home/me/curvezmq-run/flow/run1
CYLC_WORKFLOW_UUID=1e5b8d4c-6a0f-4f4e-9c55-3f0c1b7b9a10
SCHEDULER_CYLC_PATH=None
SCHEDULER_SSH_COMMAND=ssh -oBatchMode=yes -oConnectTimeout=10
SCHEDULER_USE_LOGIN_SHELL=True
`
	path := filepath.Join(srv, ContactFileName)
	if got := string(readFile(t, path)); got != want {
		t.Fatalf("contact file:\n%s\nwant:\n%s", got, want)
	}
	checkMode(t, path, 0o600)
	got, err := ReadContact(srv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(c) {
		t.Fatalf("read back %d fields, want %d", len(got), len(c))
	}
	for k, v := range c {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	host, port, err := got.HostPort()
	if err != nil || host != "vm.example.org" || port != 43001 {
		t.Fatalf("HostPort: %q %d %v", host, port, err)
	}
}

func TestMarshalRejects(t *testing.T) {
	for name, c := range map[string]Contact{
		"empty key":         {"": "x"},
		"= in key":          {"A=B": "x"},
		"newline in value":  {"A": "x\ny"},
		"CR in value":       {"A": "x\ry"},
		"LS in value":       {"A": "x\u2028y"},
		"newline in key":    {"A\nB": "x"},
		"leading space":     {"A": " x"},
		"trailing space":    {"A": "x "},
		"spaced key":        {" A": "x"},
		"invalid UTF-8":     {"A": "\xff"},
		"invalid UTF-8 key": {"\xff": "x"},
	} {
		if _, err := c.Marshal(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
		if err := WriteContact(t.TempDir(), c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: WriteContact: got %v", name, err)
		}
	}
	if b, err := (Contact{"A": "", "B": "x = y"}).Marshal(); err != nil || string(b) != "A=\nB=x = y\n" {
		t.Errorf("got %q %v", b, err)
	}
}

func TestReadContactMissing(t *testing.T) {
	srv := t.TempDir()
	_, err := ReadContact(srv)
	if !errors.Is(err, ErrNoContact) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	want := "keystore: couldn't load contact file: " + filepath.Join(srv, ContactFileName) + ": no such file or directory"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if err := os.WriteFile(filepath.Join(srv, ContactFileName), []byte("A=1\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadContact(srv)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Line != 2 || fe.Path != filepath.Join(srv, ContactFileName) || errors.Is(err, ErrNoContact) {
		t.Fatalf("got %#v", err)
	}
	if err := os.WriteFile(filepath.Join(srv, ContactFileName), bytes.Repeat([]byte("A=1\n"), MaxContactSize/4+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadContact(srv); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large file: %v", err)
	}
	if _, err := ParseContact(bytes.Repeat([]byte("A=1\n"), MaxContactSize/4+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large data: %v", err)
	}
}

func TestHostPort(t *testing.T) {
	for _, c := range []Contact{
		{},
		{ContactHost: "h"},
		{ContactPort: "1"},
		{ContactHost: "h", ContactPort: "x"},
		{ContactHost: "h", ContactPort: "0"},
		{ContactHost: "h", ContactPort: "65536"},
		{ContactHost: "", ContactPort: "1"},
	} {
		if h, p, err := c.HostPort(); err == nil {
			t.Errorf("%v: got %q %d", c, h, p)
		}
	}
}

// splitLines agrees with Python's str.splitlines.
func TestSplitLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"\n", []string{""}},
		{"a\n\n", []string{"a", ""}},
		{"a\r\nb", []string{"a", "b"}},
		{"a\r\rb", []string{"a", "", "b"}},
		{"a\n\rb", []string{"a", "", "b"}},
		{"a\x1cb\u2029", []string{"a", "b"}},
		{"a\vb\fc\u0085d", []string{"a", "b", "c", "d"}},
	} {
		if got := splitLines(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
