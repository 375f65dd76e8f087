package keystore

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// pyzmqStamp matches the first line of a pyzmq certificate and captures its timestamp.
var pyzmqStamp = regexp.MustCompile(`^#   \*\*\*\*  Generated on (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?) by pyzmq  \*\*\*\*\n`)

// sameAsOurs checks that the file pyzmq wrote at path is byte for byte what our writer
// produces for the same keys and the timestamp pyzmq stamped, and returns its certificate.
func sameAsOurs(t *testing.T, path string) *Certificate {
	t.Helper()
	data := readFile(t, path)
	c, err := ParseCertificate(path, data)
	if err != nil {
		t.Fatal(err)
	}
	m := pyzmqStamp.FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: no pyzmq banner", path)
	}
	layout := "2006-01-02 15:04:05"
	if len(m[1]) > len(layout) {
		layout += ".000000"
	}
	now, err := time.ParseInLocation(layout, string(m[1]), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	var ours []byte
	if c.HasSecret {
		kp := key.KeyPair{Public: c.Public, Secret: c.Secret}
		ours = SecretCertificate(&kp, now)
	} else {
		ours = PublicCertificate(c.Public, now)
	}
	if !bytes.Equal(ours, data) {
		t.Fatalf("%s: our text differs from pyzmq's:\n%s\npyzmq:\n%s", path, ours, data)
	}
	// The same comparison with the timestamp line normalised, as a reader of the diff sees it.
	norm := func(b []byte) []byte {
		return pyzmqStamp.ReplaceAll(b, []byte("#   ****  Generated on TIMESTAMP by pyzmq  ****\n"))
	}
	if !bytes.Equal(norm(ours), norm(data)) {
		t.Fatalf("%s: differs with timestamps normalised", path)
	}
	return c
}

// checkCylcTrees checks a scheduler .service and a remote .service written the way Cylc
// writes them (testdata/pyzmq/make_cylc_trees.py).
func checkCylcTrees(t *testing.T, srv, remote string) {
	t.Helper()
	server := sameAsOurs(t, filepath.Join(srv, ServerSecretKeyFile))
	if pub := sameAsOurs(t, filepath.Join(srv, ServerPublicKeyFile)); pub.Public != server.Public {
		t.Fatal("server.key and server.key_secret disagree")
	}
	sameAsOurs(t, filepath.Join(srv, ClientSecretKeyFile))
	// A local client (cylc CLI, a job on a shared filesystem) uses the server's pair.
	client, serverPub, err := LoadClientKeysWarn(srv, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if client.Public != server.Public || serverPub != server.Public {
		t.Fatal("local client keys are not the server's pair")
	}
	// The allow-list: the server's own key and the remote target's.
	remoteClient := sameAsOurs(t, filepath.Join(remote, ClientSecretKeyFile))
	keys, err := ReadPublicKeys(filepath.Join(srv, ClientPublicKeysDirName))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "client_hpc.key" || keys[0].Public != remoteClient.Public ||
		keys[1].Name != "client_localhost.key" || keys[1].Public != server.Public {
		t.Fatalf("allow-list %+v", keys)
	}
	sameAsOurs(t, filepath.Join(srv, ClientPublicKeysDirName, "client_hpc.key"))
	// A job on the remote uses its own pair and the server key file install sent.
	if pub := sameAsOurs(t, filepath.Join(remote, "client_hpc.key")); pub.Public != remoteClient.Public {
		t.Fatal("client_hpc.key and client.key_secret disagree on the remote")
	}
	client, serverPub, err = LoadClientKeysWarn(remote, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if client.Public != remoteClient.Public || serverPub != server.Public {
		t.Fatal("remote client keys wrong")
	}
}

// The committed copy of a pyzmq-written tree loads, and our writer reproduces every file.
func TestPyzmqCommittedTrees(t *testing.T) {
	checkCylcTrees(t, "testdata/pyzmq/service", "testdata/pyzmq/remote")
}

// The same, with trees pyzmq writes now (Debian python3-zmq via /usr/bin/python3).
func TestPyzmqLiveTrees(t *testing.T) {
	py := pythonZMQ(t)
	out := t.TempDir()
	var stderr bytes.Buffer
	cmd := runPythonFile(py, "testdata/pyzmq/make_cylc_trees.py", filepath.Join(out, "t"))
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	checkCylcTrees(t, filepath.Join(out, "t", "service"), filepath.Join(out, "t", "remote"))
	// And a plain create_certificates(dir, "server"), as the issue describes.
	dir := t.TempDir()
	runPython(t, py, "import sys, zmq.auth; zmq.auth.create_certificates(sys.argv[1], 'server')", dir)
	pub := sameAsOurs(t, filepath.Join(dir, "server.key"))
	sec := sameAsOurs(t, filepath.Join(dir, "server.key_secret"))
	if pub.Public != sec.Public || !sec.HasSecret {
		t.Fatal("pyzmq's pair does not load as a pair")
	}
}

// Files we write load with pyzmq's load_certificate and load_certificates, with the same keys.
func TestPyzmqLoadsOurFiles(t *testing.T) {
	py := pythonZMQ(t)
	base := t.TempDir()
	srv := ServiceDir(filepath.Join(base, "sched"))
	remote := ServiceDir(filepath.Join(base, "remote"))
	server, err := CreateServerKeys(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := CreateClientKeys(remote, "hpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := InstallClientKey(srv, "hpc", cert); err != nil {
		t.Fatal(err)
	}
	remoteClient, err := ReadCertificate(filepath.Join(remote, ClientSecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	// A temporary file a killed writer left must not reach the allow-list.
	if err := os.WriteFile(filepath.Join(srv, ClientPublicKeysDirName, ".client_x.key.tmp1"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	plainPub, plainSec, err := CreateCertificates(base, "plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	prog := `
import json, sys, zmq.auth
out = {}
for p in sys.argv[2:]:
    pub, sec = zmq.auth.load_certificate(p)
    out[p] = [pub.decode(), sec.decode() if sec else None]
out["allow"] = sorted(k.decode() for k in zmq.auth.load_certificates(sys.argv[1]))
print(json.dumps(out))
`
	files := []string{
		filepath.Join(srv, ServerPublicKeyFile), filepath.Join(srv, ServerSecretKeyFile),
		filepath.Join(srv, ClientSecretKeyFile), filepath.Join(remote, ClientSecretKeyFile),
		filepath.Join(remote, "client_hpc.key"), plainPub, plainSec,
	}
	var got map[string]any
	raw := runPython(t, py, prog, append([]string{filepath.Join(srv, ClientPublicKeysDirName)}, files...)...)
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	pair := func(p string) (string, any) {
		v := got[p].([]any)
		return v[0].(string), v[1]
	}
	serverSecret := server.Secret.UnsafeZ85()
	for _, p := range files[:3] {
		pub, sec := pair(p)
		if pub != server.Public.String() {
			t.Errorf("%s: pyzmq reads public %s, want %s", p, pub, server.Public)
		}
		if wantSec := p != files[0]; wantSec != (sec != nil) || (wantSec && sec.(string) != serverSecret) {
			t.Errorf("%s: pyzmq reads the wrong secret", p)
		}
	}
	for _, p := range files[3:5] {
		if pub, _ := pair(p); pub != remoteClient.Public.String() {
			t.Errorf("%s: pyzmq reads public %s", p, pub)
		}
	}
	if pub, sec := pair(plainPub); sec != nil || pub == "" {
		t.Errorf("plain.key: %v %v", pub, sec)
	}
	allow := got["allow"].([]any)
	want := []string{remoteClient.Public.String(), server.Public.String()}
	slices.Sort(want)
	if len(allow) != 2 || allow[0] != want[0] || allow[1] != want[1] {
		t.Errorf("load_certificates: %v, want %v", allow, want)
	}
}

// Where pyzmq's load_certificate reads a 40-character key from a corpus file we accept, it
// is the same key; testdata/certs/MANIFEST records where the two differ.
func TestPyzmqAgreesOnCorpus(t *testing.T) {
	py := pythonZMQ(t)
	prog := `
import json, os, sys, zmq.auth
out = {}
for n in sorted(os.listdir(sys.argv[1])):
    try:
        pub, sec = zmq.auth.load_certificate(os.path.join(sys.argv[1], n))
        out[n] = [pub.decode("latin-1"), sec.decode("latin-1") if sec is not None else None]
    except Exception as e:
        out[n] = type(e).__name__
print(json.dumps(out))
`
	var got map[string]any
	if err := json.Unmarshal(runPython(t, py, prog, "testdata/certs"), &got); err != nil {
		t.Fatal(err)
	}
	for _, m := range readManifest(t, "testdata/certs") {
		c, err := ReadCertificate(filepath.Join("testdata/certs", m.file))
		v, ok := got[m.file].([]any)
		if err != nil || !ok {
			continue // we refuse it, or pyzmq does (the MANIFEST says why)
		}
		pub := v[0].(string)
		if len(pub) == key.Z85Len && pub != c.Public.String() {
			t.Errorf("%s: pyzmq reads %s, we read %s", m.file, pub, c.Public)
		}
		sec, _ := v[1].(string)
		if c.HasSecret != (sec != "") {
			t.Errorf("%s: pyzmq secret of %d characters, ours HasSecret=%v", m.file, len(sec), c.HasSecret)
		}
		if c.HasSecret && sec != c.Secret.UnsafeZ85() {
			t.Errorf("%s: pyzmq reads another secret", m.file)
		}
	}
}

// shlexJoin is Python's shlex.join.
func TestShlexMatchesPython(t *testing.T) {
	py := pythonZMQ(t)
	args := []string{"cylc", "play", "", "a b", "it's", `"q"`, "$HOME", "*", "a\tb", "é", "--host=localhost", "x,y:z@w%v+u=t./-", "~", "!", "#"}
	got := runPython(t, py, "import shlex, sys; sys.stdout.write(shlex.join(sys.argv[1:]))", args...)
	if want := shlexJoin(args); string(got) != want {
		t.Fatalf("python %s\nours   %s", got, want)
	}
}

// Cylc's load_contact_file reads our contact file as we wrote it, and ours reads what Cylc's
// dump_contact_file writes.
func TestCylcReadsOurContact(t *testing.T) {
	py := pythonZMQ(t)
	srv := t.TempDir()
	c := fullContact()
	if err := WriteContact(srv, c); err != nil {
		t.Fatal(err)
	}
	load := `
import json, sys
with open(sys.argv[1]) as f:
    content = f.read()
data = {}
for line in content.splitlines():
    key, value = [item.strip() for item in line.split("=", 1)]
    data[key.replace('SUITE', 'WORKFLOW')] = value
print(json.dumps(data))
`
	var got map[string]string
	if err := json.Unmarshal(runPython(t, py, load, filepath.Join(srv, ContactFileName)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(c) {
		t.Fatalf("Cylc read %v", got)
	}
	for k, v := range c {
		if got[k] != v {
			t.Errorf("Cylc reads %s=%q, want %q", k, got[k], v)
		}
	}
	dump := `
import json, os, sys
data = json.loads(sys.argv[2])
with open(sys.argv[1], "wb") as handle:
    for key, value in sorted(data.items()):
        handle.write(("%s=%s\n" % (key, value)).encode())
    os.fsync(handle.fileno())
`
	raw, _ := json.Marshal(c)
	runPython(t, py, dump, filepath.Join(srv, ContactFileName), string(raw))
	back, err := ReadContact(srv)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(c) {
		t.Fatalf("read Cylc's file as %v", back)
	}
	for k, v := range c {
		if back[k] != v {
			t.Errorf("we read Cylc's %s=%q, want %q", k, back[k], v)
		}
	}
}
