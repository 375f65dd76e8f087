package main

// The demo: the whole story of a workflow's keys on one machine, with nothing but this
// binary (no ssh, no rsync, no root, no setup).
//
// In a temporary directory it makes a run directory and a second directory standing in for
// the home of a remote install target, "hpc". A scheduler runs in this process, bound to
// 127.0.0.1 on free ports. The target is reached through rsyncx.Loopback: the real
// remote-init and remote-tidy code paths run as child processes of this binary with HOME set
// to the stand-in home, the contact file's tar stream on remote-init's stdin over a pipe,
// its KEYSTART output read by the same parser as over ssh; the file install is the
// in-process copier, which applies the rules of the rsync command line. Then a client on
// the "remote" (a child process with the remote's keys) pings; a stranger is refused;
// remove-target revokes the target, closing its open connection, and its old key is
// refused; the scheduler stops, and no key is left anywhere.
//
// Each step prints a line or two; the exit status is 0 only if every step behaved. The
// temporary directory is removed at the end unless --keep is given.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

const demoUsage = `usage: curvezmq demo [--keep]

Runs the whole story on this machine, in a temporary directory, with nothing but this
program: a scheduler, an install target "hpc" whose home is a second directory (remote-init
and remote-tidy run as child processes, the file install copies with the rsync command's
rules), a client there, a stranger refused, the target removed and its client refused, and
an orderly shutdown that leaves no key. Prints a line per step; exits 0 only if every step
behaved.

flags:
  --keep  keep the temporary directory (its path is printed)
`

const (
	demoID     = "demo"
	demoTarget = "hpc"
	// demoWait bounds each wait of the demo.
	demoWait = 30 * time.Second
)

func init() {
	register("demo", command{
		summary: "run the whole story on this machine: scheduler, install target, clients, no setup",
		run:     runDemo,
	})
}

// demo is one run of the demo.
type demo struct {
	e          *env
	root       string // the temporary directory
	runDir     string
	srvDir     string
	remoteHome string
	remoteRun  string // the target's run directory, in remoteHome
	prog       string // this program, as the "remote" runs it
	step       int
}

// errDemo reports a step that did not behave.
type errDemo struct{ msg string }

func (e *errDemo) Error() string { return e.msg }

func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.e.stdout, "demo: "+format+"\n", a...)
}

// begin starts step n with its first line; more adds the step's further lines.
func (d *demo) begin(n int, format string, a ...any) {
	d.step = n
	d.say("%d. "+format, append([]any{n}, a...)...)
}

func (d *demo) more(format string, a ...any) { d.say("   "+format, a...) }

func misbehaved(format string, a ...any) error { return &errDemo{fmt.Sprintf(format, a...)} }

func runDemo(e *env, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "")
	if code, ok := parseFlags(e, fs, demoUsage, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(e, "demo", demoUsage, "takes no arguments")
	}
	root, err := os.MkdirTemp("", "curvezmq-demo-")
	if err != nil {
		fmt.Fprintf(e.stderr, "curvezmq: demo: %v\n", err)
		return exitFailed
	}
	d := &demo{e: e, root: root}
	code := d.run()
	if *keep {
		d.say("kept %s", root)
	} else if err := os.RemoveAll(root); err != nil {
		fmt.Fprintf(e.stderr, "curvezmq: demo: removing %s: %v\n", root, err)
		code = exitFailed
	}
	return code
}

// run runs the steps and returns the exit code.
func (d *demo) run() int {
	d.runDir = filepath.Join(d.root, "run", demoID)
	d.srvDir = keystore.ServiceDir(d.runDir)
	d.remoteHome = filepath.Join(d.root, "remote-home")
	d.remoteRun = filepath.Join(d.remoteHome, runDirParent, demoID)
	if err := d.prepare(); err != nil {
		fmt.Fprintf(d.e.stderr, "curvezmq: demo: %v\n", err)
		return exitFailed
	}
	d.say("run directory %s; %s stands in for the home of install target %s",
		d.runDir, d.remoteHome, demoTarget)

	// The scheduler, in this process.
	s := newScheduler(d.e)
	s.id, s.runDir, s.srvDir = demoID, d.runDir, d.srvDir
	s.host, s.listen = "127.0.0.1", "127.0.0.1"
	s.portMin, s.portMax = 0, 0
	s.newInstaller = func(name, _ string) (installer, error) {
		return &rsyncx.Loopback{Target: name, Home: d.remoteHome, Command: []string{d.prog}}, nil
	}
	s.topts.initTimeout, s.topts.installTimeout = demoWait, demoWait
	schedLog := &syncBuffer{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	exited := make(chan int, 1)
	go func() {
		exited <- s.run(&env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: schedLog, getenv: d.e.getenv}, sigs)
	}()

	err := d.steps(exited)
	if err == nil {
		d.say("every step behaved")
		return exitOK
	}
	d.say("FAILED at step %d: %v", d.step, err)
	select {
	case code := <-exited:
		d.say("the scheduler had exited with %d", code)
	default:
		sigs <- syscall.SIGTERM
		select {
		case <-exited:
		case <-time.After(demoWait):
			d.say("the scheduler did not stop within %v", demoWait)
		}
	}
	if out := strings.TrimSpace(schedLog.String()); out != "" {
		fmt.Fprintf(d.e.stderr, "curvezmq: demo: the scheduler said:\n%s\n", out)
	}
	return exitFailed
}

// prepare makes the directories and the "remote" program: a link to this binary named
// curvezmq.
func (d *demo) prepare() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	if err := os.MkdirAll(d.remoteHome, 0o700); err != nil {
		return err
	}
	bin := filepath.Join(d.root, "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return err
	}
	d.prog = filepath.Join(bin, "curvezmq")
	return os.Symlink(self, d.prog)
}

// steps runs the story; exited delivers the scheduler's exit code.
func (d *demo) steps(exited <-chan int) error {
	// 1. The scheduler is up.
	d.step = 1
	contact, err := d.waitContact(exited)
	if err != nil {
		return err
	}
	d.begin(1, "scheduler up on 127.0.0.1:%s (keys in %s)", contact[keystore.ContactPort], d.srvDir)

	// 2. The install target: remote-init, its key, the file install.
	d.step = 2
	var added map[string]targetView
	if err := d.request(&added, "add-target", "name="+demoTarget, "host=localhost"); err != nil {
		return err
	}
	d.begin(2, "add-target %s: %s: remote-init runs as its own process, curvezmq remote-init %s '$HOME/%s/%s', the contact file on its stdin",
		demoTarget, added[demoTarget].Status, demoTarget, runDirParent, demoID)
	v, err := d.waitTarget(exited)
	if err != nil {
		return err
	}
	if v.Status != rsyncx.StatusInstallDone {
		return misbehaved("target %s: %s: %s", demoTarget, v.Status, v.Error)
	}
	remoteSrv := keystore.ServiceDir(d.remoteRun)
	got, err := fileNames(remoteSrv)
	if err != nil {
		return err
	}
	want := []string{keystore.ClientSecretKeyFile, keystore.ClientKeyFile(demoTarget), keystore.ContactFileName, keystore.ServerPublicKeyFile}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return misbehaved("the remote .service holds %q, want %q", got, want)
	}
	local, _ := os.ReadFile(filepath.Join(d.srvDir, keystore.ServerPublicKeyFile))
	remote, _ := os.ReadFile(filepath.Join(remoteSrv, keystore.ServerPublicKeyFile))
	if len(local) == 0 || !bytes.Equal(local, remote) {
		return misbehaved("the remote server.key is not the scheduler's")
	}
	cert, err := keystore.ReadCertificate(filepath.Join(d.srvDir, keystore.ClientPublicKeysDirName, keystore.ClientKeyFile(demoTarget)))
	if err != nil {
		return misbehaved("the target's key is not in client_public_keys: %v", err)
	}
	logs, _ := filepath.Glob(filepath.Join(d.runDir, filepath.FromSlash(rsyncx.InstallLogDir), "*-start-"+demoTarget+".log"))
	d.more("%s: %s; its public key %s is now client_public_keys/%s", demoTarget, v.Status, cert.Public.Short(), keystore.ClientKeyFile(demoTarget))
	d.more("file install with the rsync command's rules, in-process: only .service/server.key left .service (%s)", strings.Join(relPaths(d.runDir, logs), ", "))
	d.more("the remote .service holds %s", strings.Join(got, ", "))

	// 3. A client on the target, with its own key.
	d.step = 3
	r := d.remoteClient("ping")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `"pong"` {
		return misbehaved("the client on %s: exit %d, %q, %s", demoTarget, r.code, r.stdout, strings.TrimSpace(r.stderr))
	}
	d.begin(3, "a client on %s (its own process, HOME=%s, key %s) sends ping: %s", demoTarget, d.remoteHome, cert.Public.Short(), strings.TrimSpace(r.stdout))
	kp, serverKey, err := keystore.LoadClientKeys(remoteSrv)
	if err != nil {
		return err
	}
	defer kp.Wipe()
	addr := net.JoinHostPort("127.0.0.1", contact[keystore.ContactPort])
	conn, err := demoDial(addr, kp, serverKey)
	if err != nil {
		return misbehaved("%s's connection: %v", demoTarget, err)
	}
	defer conn.Close()
	d.more("%s's client keeps a connection open", demoTarget)

	// 4. A stranger: the server's key and contact file, but a key pair of its own.
	d.step = 4
	stranger := filepath.Join(d.root, "stranger")
	if err := d.strangerDir(stranger, remoteSrv); err != nil {
		return err
	}
	r = d.client(d.e.getenv("HOME"), "--run-dir", stranger, "ping")
	os.RemoveAll(stranger)
	if r.code != exitRefused || !strings.Contains(r.stderr, "ERROR 400") {
		return misbehaved("the stranger: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
	}
	d.begin(4, "a stranger with the server's key but its own key pair is refused: ERROR 400 (client exit %d)", r.code)

	// 5. remove-target: the key is revoked, the open connection closed, the remote tidied.
	d.step = 5
	var removed map[string]targetView
	if err := d.request(&removed, "remove-target", "name="+demoTarget); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(demoWait))
	if _, err := conn.Recv(nil); err == nil || isTimeout(err) {
		return misbehaved("%s's open connection was not closed: %v", demoTarget, err)
	}
	if err := d.waitGone(exited); err != nil {
		return err
	}
	if left, err := keyFilesUnder(d.remoteHome); err != nil || len(left) > 0 {
		return misbehaved("left on %s after remote tidy: %q %v", demoTarget, left, err)
	}
	d.begin(5, "remove-target %s: its key is revoked, its open connection was closed, remote tidy left no key there", demoTarget)

	// 6. The removed target's key is refused.
	d.step = 6
	old, err := demoDial(addr, kp, serverKey)
	var ae *curve.AuthError
	if old != nil {
		old.Close()
	}
	if !errors.As(err, &ae) || ae.Status != curve.StatusDenied {
		return misbehaved("%s's old key: %v", demoTarget, err)
	}
	if r := d.remoteClient("ping"); r.code != exitNotRunning {
		return misbehaved("the client on %s after the tidy: exit %d, %s", demoTarget, r.code, strings.TrimSpace(r.stderr))
	}
	d.begin(6, "%s's old key is refused: ERROR %d; its client finds no keys there any more (exit %d)", demoTarget, ae.Status, exitNotRunning)

	// 7. An orderly shutdown, and no key left anywhere.
	d.step = 7
	if err := d.request(nil, "stop"); err != nil {
		return err
	}
	select {
	case code := <-exited:
		if code != exitOK {
			return misbehaved("the scheduler exited with %d", code)
		}
	case <-time.After(demoWait):
		return misbehaved("the scheduler did not stop within %v", demoWait)
	}
	left, err := keyFilesUnder(d.root)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return misbehaved("left after the shutdown: %q", left)
	}
	d.begin(7, "stop: the scheduler shut down; no key file and no contact file left under %s", d.root)
	return nil
}

// waitContact waits for the scheduler's contact file.
func (d *demo) waitContact(exited <-chan int) (keystore.Contact, error) {
	deadline := time.Now().Add(demoWait)
	for {
		c, err := keystore.ReadContact(d.srvDir)
		if err == nil && c[keystore.ContactPID] == strconv.Itoa(os.Getpid()) {
			return c, nil
		}
		select {
		case code := <-exited:
			return nil, misbehaved("the scheduler exited with %d before writing its contact file", code)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, misbehaved("no contact file within %v", demoWait)
		}
	}
}

// request sends a request with the scheduler's own client and decodes the reply's data.
func (d *demo) request(v any, args ...string) error {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := runClient(e, append([]string{"--run-dir", d.runDir, "--timeout", "10s"}, args...))
	if code != exitOK {
		return misbehaved("request %s: exit %d: %s", args[0], code, strings.TrimSpace(errb.String()))
	}
	if v != nil {
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			return misbehaved("request %s: %v", args[0], err)
		}
	}
	return nil
}

// waitTarget waits until the target's steps have ended.
func (d *demo) waitTarget(exited <-chan int) (targetView, error) {
	var v targetView
	err := d.poll(exited, func(all map[string]targetView) bool {
		v = all[demoTarget]
		return slices.Contains([]rsyncx.Status{rsyncx.StatusInitFailed, rsyncx.StatusInit255,
			rsyncx.StatusInstallDone, rsyncx.StatusInstallFailed, rsyncx.StatusInstall255}, v.Status)
	})
	return v, err
}

// waitGone waits until the removed target has left "targets" (its remote tidy is done).
func (d *demo) waitGone(exited <-chan int) error {
	return d.poll(exited, func(all map[string]targetView) bool {
		_, ok := all[demoTarget]
		return !ok
	})
}

func (d *demo) poll(exited <-chan int, done func(map[string]targetView) bool) error {
	deadline := time.Now().Add(demoWait)
	for {
		var all map[string]targetView
		if err := d.request(&all, "targets"); err != nil {
			return err
		}
		if done(all) {
			return nil
		}
		if time.Now().After(deadline) {
			return misbehaved("target %s: still %+v after %v", demoTarget, all[demoTarget], demoWait)
		}
		select {
		case code := <-exited:
			return misbehaved("the scheduler exited with %d", code)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// demoResult is what a child process did.
type demoResult struct {
	code           int
	stdout, stderr string
}

// client runs this program's client as a child process with HOME set to home.
func (d *demo) client(home string, args ...string) demoResult {
	ctx, cancel := context.WithTimeout(context.Background(), demoWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.prog, append([]string{"client", "--timeout", "10s"}, args...)...)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, runDirEnv+"=")
	})
	cmd.Env = append(env, "HOME="+home)
	cmd.Dir = d.root
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := demoResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.code, r.stderr = -1, err.Error()
	}
	return r
}

// remoteClient runs the client on the target: HOME is the stand-in home and the workflow is
// found by its id, as a job there finds it.
func (d *demo) remoteClient(args ...string) demoResult {
	return d.client(d.remoteHome, append([]string{"--id", demoID}, args...)...)
}

// strangerDir makes a .service with the server's key and the contact file (both public) and
// a new client key pair.
func (d *demo) strangerDir(dir, remoteSrv string) error {
	srv := keystore.ServiceDir(dir)
	if err := os.MkdirAll(srv, 0o700); err != nil {
		return err
	}
	for _, name := range []string{keystore.ContactFileName, keystore.ServerPublicKeyFile} {
		b, err := os.ReadFile(filepath.Join(remoteSrv, name))
		if err != nil {
			return err
		}
		if err := keystore.WriteFileAtomic(filepath.Join(srv, name), b, 0o600); err != nil {
			return err
		}
	}
	_, _, err := keystore.CreateCertificates(srv, "client", nil)
	return err
}

// demoDial connects as a REQ client and checks the connection with a ping.
func demoDial(addr string, kp curve.KeyPair, serverKey curve.PublicKey) (*curve.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := curve.Dial(ctx, "tcp", addr, &curve.Config{KeyPair: kp, ServerKey: serverKey, SocketType: "REQ"})
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Send([]byte{}, []byte(`{"command":"ping"}`)); err != nil {
		conn.Close()
		return nil, err
	}
	if msg, err := conn.Recv(nil); err != nil || len(msg) != 2 || string(msg[1]) != `{"data":"pong"}` {
		conn.Close()
		return nil, fmt.Errorf("ping: %q, %v", msg, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// fileNames lists the regular files directly in dir, sorted.
func fileNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// keyFilesUnder lists, relative to dir, every file whose name contains "key" and every
// contact file.
func keyFilesUnder(dir string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && (strings.Contains(de.Name(), "key") || de.Name() == keystore.ContactFileName) {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, rel)
		}
		return nil
	})
	return found, err
}

// syncBuffer is a bytes.Buffer for a writer and a reader on different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func relPaths(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i], _ = filepath.Rel(dir, p)
	}
	return out
}
