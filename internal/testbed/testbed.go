// Package testbed gives tests real remote hosts: an OpenSSH sshd in its own network, PID and
// mount namespaces, reached over a veth pair, serving a dedicated unprivileged user. It drives
// the bash script testbed.sh (embedded in this package) and uses only the standard library.
//
// # Requirements
//
// Root (for namespaces and mounts), /usr/sbin/sshd and the ssh, ssh-keygen, rsync, ip,
// unshare, flock, useradd and mount programs. [Up] and [Shared] skip the test with the reason
// when something is missing, or when TESTBED_SKIP is set; a test bed that cannot come up on a
// machine that has all of them is a test failure.
//
// # Use
//
// A test that changes its host (stops sshd, adds a blackhole route, fills a disk) takes its own
// with [Up]; the host is taken down when the test ends. Tests that only read and write files
// can share one host per test binary with [Shared], if the package's TestMain calls [Main].
//
// Each host is reachable as plain "ssh rbtN", "ssh 10.213.N.2" (port 22) and "ssh rbtN-norsync"
// (port 2222, whose PATH has no rsync), through a client configuration that the script drops
// into /etc/ssh/ssh_config.d; so a command line without -F works, as a scheduler's would.
// Files written under [Env.RemoteHomeLocal] (see [Host.WriteFile]) are the remote user's home.
// The remote home also holds full (a 64 KiB tmpfs), ro (a read-only tmpfs) and locked (mode
// 0555); they and the remote's private /tmp exist only inside sshd's mount namespace.
//
// # Leftovers
//
// Network namespaces, the guard route 10.213.0.0/16 and the remote user outlive processes.
// Taking a host down removes its namespace, veth pair, client configuration and directory;
// the user and the guard route stay until "testbed.sh cleanup", which CI runs before and after
// the tests (never while tests run). Two test binaries may run at once: the namespace name is
// the instance's lock.
package testbed

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed testbed.sh
var script []byte

// baseDir is where the script keeps instance directories.
const baseDir = "/tmp/remotebed"

// scriptTimeout bounds one run of the script; up takes well under a second.
const scriptTimeout = 2 * time.Minute

// Env is an instance as described by its env file.
type Env struct {
	N               int    // RB_N: the instance number
	Netns           string // RB_NETNS: the network namespace, rbtN
	Host            string // RB_HOST: the ssh alias, rbtN
	HostNoRsync     string // RB_HOST_NORSYNC: the alias of port 2222, whose PATH lacks rsync
	Addr            string // RB_ADDR: the remote address, 10.213.N.2
	LocalAddr       string // RB_LOCAL_ADDR: this side of the veth pair, 10.213.N.1
	HostIf          string // RB_HOST_IF: this side's interface, rbhN
	User            string // RB_USER: the remote user
	UID, GID        int    // RB_UID, RB_GID: the remote user's ids
	Dir             string // RB_DIR: the instance directory
	SSHConfig       string // RB_SSH_CONFIG: the client configuration (also installed system-wide)
	Key             string // RB_KEY: the client's private key
	KnownHosts      string // RB_KNOWN_HOSTS: the right host key, for ports 22 and 2222
	WrongKnownHosts string // RB_WRONG_KNOWN_HOSTS: a different key for the same address
	SSHDPID         int    // RB_SSHD_PID: sshd's PID (PID 1 of the instance's PID namespace)
	UnsharePID      int    // RB_UNSHARE_PID: sshd's parent
	SSHDLog         string // RB_SSHD_LOG: sshd's log
	RemoteHome      string // RB_REMOTE_HOME: the home directory as the remote sees it
	RemoteHomeLocal string // RB_REMOTE_HOME_LOCAL: the same directory as this side sees it
}

// ParseEnv parses the contents of an env file: KEY=value lines; unknown keys are ignored,
// missing or malformed ones are an error.
func ParseEnv(data []byte) (Env, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok || k == "" {
			return Env{}, fmt.Errorf("testbed: env line %d: not KEY=value", line)
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return Env{}, fmt.Errorf("testbed: env: %w", err)
	}
	var e Env
	var errs []error
	str := func(dst *string, k string) {
		if v, ok := vals[k]; ok && v != "" {
			*dst = v
		} else {
			errs = append(errs, fmt.Errorf("testbed: env: %s missing", k))
		}
	}
	num := func(dst *int, k string) {
		v, ok := vals[k]
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("testbed: env: %s missing or not a positive number", k))
			return
		}
		*dst = n
	}
	num(&e.N, "RB_N")
	str(&e.Netns, "RB_NETNS")
	str(&e.Host, "RB_HOST")
	str(&e.HostNoRsync, "RB_HOST_NORSYNC")
	str(&e.Addr, "RB_ADDR")
	str(&e.LocalAddr, "RB_LOCAL_ADDR")
	str(&e.HostIf, "RB_HOST_IF")
	str(&e.User, "RB_USER")
	num(&e.UID, "RB_UID")
	num(&e.GID, "RB_GID")
	str(&e.Dir, "RB_DIR")
	str(&e.SSHConfig, "RB_SSH_CONFIG")
	str(&e.Key, "RB_KEY")
	str(&e.KnownHosts, "RB_KNOWN_HOSTS")
	str(&e.WrongKnownHosts, "RB_WRONG_KNOWN_HOSTS")
	num(&e.SSHDPID, "RB_SSHD_PID")
	num(&e.UnsharePID, "RB_UNSHARE_PID")
	str(&e.SSHDLog, "RB_SSHD_LOG")
	str(&e.RemoteHome, "RB_REMOTE_HOME")
	str(&e.RemoteHomeLocal, "RB_REMOTE_HOME_LOCAL")
	if err := errors.Join(errs...); err != nil {
		return Env{}, err
	}
	return e, nil
}

// requiredPrograms are what the script and the tests run.
var requiredPrograms = []string{"bash", "ssh", "ssh-keygen", "rsync", "ip", "unshare", "flock", "useradd", "mount", "setsid"}

// sbinDirs are searched as well as PATH: root's tools live there and a test's PATH may lack them.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// Available reports why the test bed cannot run here, or nil if it can.
func Available() error {
	if os.Getenv("TESTBED_SKIP") != "" {
		return errors.New("testbed: TESTBED_SKIP is set")
	}
	if os.Geteuid() != 0 {
		return errors.New("testbed: needs root (network namespaces, mounts, a dedicated user)")
	}
	var missing []string
	if fi, err := os.Stat("/usr/sbin/sshd"); err != nil || fi.Mode()&0o111 == 0 {
		missing = append(missing, "/usr/sbin/sshd (openssh-server)")
	}
	for _, p := range requiredPrograms {
		if lookPath(p) == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("testbed: missing %s (apt-get install openssh-server openssh-client rsync iproute2)", strings.Join(missing, ", "))
	}
	return nil
}

func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Host is one running instance.
type Host struct {
	// Env describes the instance; Restart refreshes it (sshd gets new PIDs).
	Env Env

	scriptDir string // holds this host's copy of the script
	ownDir    bool   // scriptDir is ours to remove
	closeOnce sync.Once
	closeErr  error
}

// Options change how [Start] brings a host up; the zero value is the normal case.
type Options struct {
	// First is the first instance number to try (default 1).
	First int
	// SSHDExtra is appended to sshd_config (tests use it to make start-up fail).
	SSHDExtra string
}

// Start brings up a host; the caller must Close it. Tests should use [Up] or [Shared].
func Start(opts *Options) (*Host, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testbed-")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	h, err := start(dir, true, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

func start(dir string, own bool, opts *Options) (*Host, error) {
	if err := os.WriteFile(filepath.Join(dir, "testbed.sh"), script, 0o700); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	h := &Host{scriptDir: dir, ownDir: own}
	var env []string
	if opts != nil {
		if opts.First != 0 {
			env = append(env, "RB_FIRST="+strconv.Itoa(opts.First))
		}
		if opts.SSHDExtra != "" {
			env = append(env, "RB_SSHD_EXTRA="+opts.SSHDExtra)
		}
	}
	out, err := h.script(env, "up")
	if err != nil {
		return nil, err
	}
	if err := h.load(out); err != nil {
		// The script succeeded, so an instance exists: find its number in the path it printed.
		if n, ok := instanceFromEnvPath(out); ok {
			err = errors.Join(err, h.down(n))
		}
		return nil, err
	}
	return h, nil
}

// ScriptPath returns the path of this host's copy of testbed.sh.
func (h *Host) ScriptPath() string { return filepath.Join(h.scriptDir, "testbed.sh") }

// script runs testbed.sh with args and returns its stdout; the error carries stderr.
func (h *Host) script(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, lookPath("bash"), append([]string{h.ScriptPath()}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testbed: testbed.sh %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// load reads the env file whose path the script printed.
func (h *Host) load(path string) error {
	if !filepath.IsAbs(path) || strings.ContainsAny(path, "\n") {
		return fmt.Errorf("testbed: unexpected output from the script: %q", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	e, err := ParseEnv(data)
	if err != nil {
		return err
	}
	h.Env = e
	return nil
}

func instanceFromEnvPath(p string) (int, bool) {
	name := filepath.Base(filepath.Dir(p))
	n, err := strconv.Atoi(strings.TrimPrefix(name, "rbt"))
	return n, strings.HasPrefix(name, "rbt") && err == nil && n > 0
}

func (h *Host) down(n int) error {
	_, err := h.script(nil, "down", strconv.Itoa(n))
	return err
}

// Close takes the host down: every process in it, its namespace, veth pair, client
// configuration and directory. It is safe to call more than once.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.closeErr = h.down(h.Env.N)
		if h.ownDir {
			if err := os.RemoveAll(h.scriptDir); err != nil {
				h.closeErr = errors.Join(h.closeErr, err)
			}
		}
	})
	return h.closeErr
}

// Restart (re)starts the host's sshd, as after a crash: any remote processes still running
// are ended first; the home directory is kept. Env gets the new PIDs.
func (h *Host) Restart() error {
	out, err := h.script(nil, "start", strconv.Itoa(h.Env.N))
	if err != nil {
		return err
	}
	return h.load(out)
}

// Signal sends sig to the host's sshd. sshd is PID 1 of the host's PID namespace, so its
// death ends every remote process.
func (h *Host) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(h.Env.SSHDPID, sig); err != nil {
		return fmt.Errorf("testbed: signal %v to sshd %d: %w", sig, h.Env.SSHDPID, err)
	}
	return nil
}

// Crash kills sshd (and so every remote process) and waits until it is gone.
func (h *Host) Crash() error {
	if err := h.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return waitFor(10*time.Second, func() bool { return !alive(h.Env.SSHDPID) },
		"sshd %d to die", h.Env.SSHDPID)
}

// Blackhole makes the host drop every packet to this side (connects time out) until undo is
// called.
func (h *Host) Blackhole() (undo func() error, err error) {
	run := func(verb string) error {
		args := []string{"-n", h.Env.Netns, "route", verb, "blackhole", h.Env.LocalAddr + "/32"}
		out, err := exec.Command(lookPath("ip"), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("testbed: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := run("add"); err != nil {
		return nil, err
	}
	return func() error { return run("del") }, nil
}

// Processes returns the PIDs of the processes in the host's network namespace.
func (h *Host) Processes() ([]int, error) {
	out, err := exec.Command(lookPath("ip"), "netns", "pids", h.Env.Netns).Output()
	if err != nil {
		return nil, fmt.Errorf("testbed: ip netns pids %s: %w", h.Env.Netns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// SSH runs a command on the host as the remote user (through the installed client
// configuration) and returns its stdout; the error includes stderr.
func (h *Host) SSH(ctx context.Context, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, lookPath("ssh"), "-oBatchMode=yes", "-oConnectTimeout=5", h.Env.Host, command)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("testbed: ssh %s %q: %w: %s", h.Env.Host, command, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// LocalPath returns where rel (relative to the remote home) is on this side.
func (h *Host) LocalPath(rel string) string {
	return filepath.Join(h.Env.RemoteHomeLocal, filepath.FromSlash(rel))
}

// WriteFile writes data to rel under the remote home, creating missing parent directories
// (0755); everything it creates belongs to the remote user.
func (h *Host) WriteFile(rel string, data []byte, perm os.FileMode) error {
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("testbed: %q is not a path inside the remote home", rel)
	}
	dir := h.Env.RemoteHomeLocal
	parts := strings.Split(filepath.ToSlash(filepath.Dir(filepath.FromSlash(rel))), "/")
	for _, p := range parts {
		if p == "." {
			continue
		}
		dir = filepath.Join(dir, p)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err == nil {
			err = os.Chmod(dir, 0o755) // os.Mkdir's mode is subject to the umask
		}
		if err == nil {
			err = os.Lchown(dir, h.Env.UID, h.Env.GID)
		}
		if err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
	}
	p := h.LocalPath(rel)
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if err := os.Chmod(p, perm); err != nil { // os.WriteFile's mode is subject to the umask
		return fmt.Errorf("testbed: %w", err)
	}
	if err := os.Lchown(p, h.Env.UID, h.Env.GID); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// Up brings up a host for the test and takes it down when the test ends (reporting any
// error). It skips the test when the test bed cannot run here.
func Up(t testing.TB) *Host {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	h, err := start(t.TempDir(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("taking down %s: %v", h.Env.Netns, err)
		}
	})
	return h
}

var shared struct {
	sync.Mutex
	main bool // Main is running the tests
	host *Host
	err  error
}

// Shared returns the test binary's shared host, bringing it up on first use. The package's
// TestMain must call [Main], which takes it down. Tests must not stop, restart or block the
// shared host; use [Up] for that.
func Shared(t testing.TB) *Host {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("testbed: Shared needs TestMain to call testbed.Main")
	}
	if shared.host == nil && shared.err == nil {
		shared.host, shared.err = Start(nil)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.host
}

// Main runs the tests and then takes down the shared host, if a test brought one up. Use it
// as os.Exit(testbed.Main(m)) in TestMain.
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.host != nil {
		if err := shared.host.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testbed: taking down the shared host: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.host = nil
	}
	return code
}

// NamespaceExists reports whether the named network namespace exists.
func NamespaceExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/run/netns", name))
	return err == nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may contain anything.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	return data[i+2] != 'Z'
}

// waitFor polls cond until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool, what string, args ...any) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: timed out waiting for "+what, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
