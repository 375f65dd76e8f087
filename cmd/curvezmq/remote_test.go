package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/internal/testbed"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "curvezmq":
		// Copied to a test bed host as bin/curvezmq, this test binary is the remote program.
		main()
	case holdName:
		os.Exit(holdMain(os.Args[1:]))
	}
	os.Exit(testbed.Main(m))
}

// runCmd runs the command line in-process with HOME set to home.
func runCmd(home string, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	e := &env{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	code = dispatch(e, args)
	return code, out.String(), errb.String()
}

const testContact = "CYLC_WORKFLOW_ID=flow/run1\nCYLC_WORKFLOW_PORT=43001\n"

func contactTar(t *testing.T) *bytes.Buffer {
	t.Helper()
	srv := t.TempDir()
	if err := os.WriteFile(filepath.Join(srv, keystore.ContactFileName), []byte(testContact), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rsyncx.WriteContactTar(&b, srv); err != nil {
		t.Fatal(err)
	}
	return &b
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestRemoteInitAndTidy(t *testing.T) {
	home := t.TempDir()
	code, stdout, stderr := runCmd(home, contactTar(t), "remote-init", "hpc", "$HOME/curvezmq-run/flow/run1")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	srv := filepath.Join(home, "curvezmq-run", "flow", "run1", ".service")
	pub, err := os.ReadFile(filepath.Join(srv, "client_hpc.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Cylc's stdout, exactly: KEYSTART, the public certificate as written, KEYEND, the status.
	if want := "KEYSTART" + string(pub) + "KEYENDREMOTE INIT DONE\n"; stdout != want || stderr != "" {
		t.Errorf("stdout\n%q\nwant\n%q\nstderr %q", stdout, want, stderr)
	}
	cert, err := rsyncx.ParseRemoteInitOutput(code, []byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler side accepts what was printed.
	if err := keystore.InstallClientKey(t.TempDir(), "hpc", cert); err != nil {
		t.Errorf("InstallClientKey: %v", err)
	}
	for _, name := range []string{"client.key_secret", "client_hpc.key", "contact"} {
		if m := mode(t, filepath.Join(srv, name)); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, m)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(srv, "contact")); string(got) != testContact {
		t.Errorf("contact %q", got)
	}

	// The scheduler's file install brings server.key; remote-tidy removes it with the rest.
	if err := os.WriteFile(filepath.Join(srv, "server.key"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(home, nil, "remote-tidy", "hpc", "${HOME}/curvezmq-run/flow/run1")
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("remote-tidy: exit %d, %q, %q", code, stdout, stderr)
	}
	for _, name := range []string{"client.key_secret", "client_hpc.key", "contact", "server.key"} {
		if _, err := os.Lstat(filepath.Join(srv, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after remote-tidy: %v", name, err)
		}
	}
}

func TestRemoteInitEmptyStdin(t *testing.T) {
	home := t.TempDir()
	code, stdout, _ := runCmd(home, nil, "remote-init", "hpc", home+"/run")
	if code != 0 || !strings.HasSuffix(stdout, "KEYENDREMOTE INIT DONE\n") {
		t.Fatalf("exit %d, %q", code, stdout)
	}
	if _, err := os.Lstat(filepath.Join(home, "run", ".service", "contact")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a contact file appeared: %v", err)
	}
}

func TestRemoteInitFailures(t *testing.T) {
	hostileTar := func() io.Reader {
		var b bytes.Buffer
		b.Write(contactTar(t).Bytes()[:100]) // cut inside the header
		return &b
	}
	for _, c := range []struct {
		name  string
		setup func(runDir string) error
		home  string // "" means the test's home
		stdin func() io.Reader
		args  []string
		code  int
		msg   string
	}{
		{name: "too few arguments", args: []string{"hpc"}, code: 1, msg: "want TARGET RUN_DIR"},
		{name: "too many arguments", args: []string{"hpc", "$HOME/r", "log=/x"}, code: 1, msg: "want TARGET RUN_DIR"},
		{name: "unknown flag", args: []string{"-v", "hpc", "$HOME/r"}, code: 1, msg: "flag provided but not defined"},
		{name: "bad target", args: []string{"x;y", "$HOME/r"}, code: 1, msg: "invalid install target"},
		{name: "relative run dir", args: []string{"hpc", "curvezmq-run/r"}, code: 1, msg: "not absolute"},
		{name: "other variable", args: []string{"hpc", "$HOME/$USER/r"}, code: 1, msg: "invalid environment variable"},
		{name: "a longer name", args: []string{"hpc", "$HOMEDIR/r"}, code: 1, msg: "invalid environment variable"},
		{name: "a longer name, braced", args: []string{"hpc", "${HOME_OLD}/r"}, code: 1, msg: "invalid environment variable"},
		{name: "a lone dollar", args: []string{"hpc", "$HOME/r$"}, code: 1, msg: "invalid environment variable"},
		{name: "no HOME", home: "-", args: []string{"hpc", "$HOME/r"}, code: 1, msg: "HOME is not set"},
		{name: "hostile tar", stdin: hostileTar, args: []string{"hpc", "$HOME/r"}, code: 1, msg: "unacceptable tar stream"},
		{
			name:  "guard A: the scheduler's own run directory",
			setup: func(r string) error { return os.MkdirAll(filepath.Join(r, ".service", "client_public_keys"), 0o700) },
			args:  []string{"hpc", "$HOME/r"}, code: 2, msg: "Unexpected key directory exists: ",
		},
		{
			name: "guard B: another target's key",
			setup: func(r string) error {
				if err := os.MkdirAll(filepath.Join(r, ".service"), 0o700); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(r, ".service", "client_hpc2.key"), nil, 0o600)
			},
			args: []string{"hpc", "$HOME/r"}, code: 2, msg: "Unexpected authentication key 'client_hpc2.key' exists.",
		},
		{
			name: "keys cannot be made",
			setup: func(r string) error {
				if err := os.MkdirAll(r, 0o700); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(r, ".service"), nil, 0o600)
			},
			args: []string{"hpc", "$HOME/r"}, code: 3, msg: "",
		},
		{
			name: "contact file cannot be installed",
			setup: func(r string) error {
				return os.MkdirAll(filepath.Join(r, ".service", "contact"), 0o700)
			},
			stdin: func() io.Reader { return contactTar(t) },
			args:  []string{"hpc", "$HOME/r"}, code: 3, msg: "contact",
		},
	} {
		home := t.TempDir()
		if c.setup != nil {
			if err := c.setup(filepath.Join(home, "r")); err != nil {
				t.Fatal(err)
			}
		}
		h := home
		if c.home == "-" {
			h = ""
		}
		var stdin io.Reader
		if c.stdin != nil {
			stdin = c.stdin()
		}
		code, stdout, stderr := runCmd(h, stdin, append([]string{"remote-init"}, c.args...)...)
		if code != c.code || !strings.HasPrefix(stdout, "REMOTE INIT FAILED\n") || !strings.Contains(stdout, c.msg) {
			t.Errorf("%s: exit %d (want %d)\nstdout %q\nstderr %q", c.name, code, c.code, stdout, stderr)
		}
		if strings.Contains(stdout, "KEYSTART") || !strings.HasPrefix(stderr, "curvezmq: remote-init: ") {
			t.Errorf("%s: stdout %q, stderr %q", c.name, stdout, stderr)
		}
		// No key is left by a failure: none is made for a refusal, and one made before a
		// later step failed is removed (the scheduler tidies only successful targets).
		for _, name := range []string{"client.key_secret", "client_hpc.key"} {
			if _, err := os.Lstat(filepath.Join(home, "r", ".service", name)); err == nil {
				t.Errorf("%s: %s left behind", c.name, name)
			}
		}
	}

	code, stdout, _ := runCmd(t.TempDir(), nil, "remote-init", "-h")
	if code != 0 || !strings.HasPrefix(stdout, "usage: curvezmq remote-init TARGET RUN_DIR") {
		t.Errorf("-h: exit %d, %q", code, stdout)
	}
}

func TestRemoteTidyFailures(t *testing.T) {
	for _, args := range [][]string{{"hpc"}, {"-x", "hpc", "$HOME/r"}, {"../x", "$HOME/r"}, {"hpc", "r"}} {
		code, stdout, stderr := runCmd(t.TempDir(), nil, append([]string{"remote-tidy"}, args...)...)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "curvezmq: remote-tidy: ") {
			t.Errorf("%q: exit %d, %q, %q", args, code, stdout, stderr)
		}
	}
	// Nothing to remove is fine.
	if code, _, stderr := runCmd(t.TempDir(), nil, "remote-tidy", "hpc", "$HOME/none"); code != 0 {
		t.Errorf("missing run dir: exit %d, %q", code, stderr)
	}
}

// TestRemoteCommandsOverSSH runs this program as the remote side of a test bed host, through
// rsyncx and real ssh: remote-init makes keys there and its certificate is accepted locally,
// the file install brings server.key, remote-tidy removes the keys.
func TestRemoteCommandsOverSSH(t *testing.T) {
	h := testbed.Shared(t)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile("bin/curvezmq", self, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	runDir := filepath.Join(t.TempDir(), "flow", "e2e")
	srv := keystore.ServiceDir(runDir)
	if err := os.MkdirAll(srv, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.CreateServerKeys(srv, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, keystore.ContactFileName), []byte(testContact), 0o600); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := rsyncx.WriteContactTar(&stream, srv); err != nil {
		t.Fatal(err)
	}

	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", RemoteCommand: "bin/curvezmq"}
	res, err := r.Init(ctx, "flow/e2e", &stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.InstallClientKey(srv, "hpc", res.Cert); err != nil {
		t.Fatalf("InstallClientKey: %v", err)
	}
	remoteSrv := h.LocalPath("curvezmq-run/flow/e2e/.service")
	if got, _ := os.ReadFile(filepath.Join(remoteSrv, "client_hpc.key")); !bytes.Equal(got, res.Cert) {
		t.Errorf("the remote's client_hpc.key differs from the certificate printed")
	}
	if got, _ := os.ReadFile(filepath.Join(remoteSrv, "contact")); string(got) != testContact {
		t.Errorf("remote contact %q", got)
	}

	if _, err := r.Install(ctx, runDir, "flow/e2e", rsyncx.LoadStart); err != nil {
		t.Fatal(err)
	}
	local, _ := os.ReadFile(filepath.Join(srv, keystore.ServerPublicKeyFile))
	if got, _ := os.ReadFile(filepath.Join(remoteSrv, "server.key")); !bytes.Equal(got, local) {
		t.Errorf("remote server.key differs from the local one")
	}
	if _, err := os.Lstat(filepath.Join(remoteSrv, keystore.ServerSecretKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("server.key_secret reached the remote: %v", err)
	}

	if err := r.Tidy(ctx, "flow/e2e"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(remoteSrv)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), "key") || e.Name() == "contact" {
			t.Errorf("%s left on the remote after remote-tidy", e.Name())
		}
	}
}
