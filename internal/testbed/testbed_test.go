package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

const sampleEnv = `RB_N=7
RB_NETNS=rbt7
RB_HOST=rbt7
RB_HOST_NORSYNC=rbt7-norsync
RB_ADDR=10.213.7.2
RB_LOCAL_ADDR=10.213.7.1
RB_HOST_IF=rbh7
RB_USER=rbremote
RB_UID=1001
RB_GID=1002
RB_DIR=/tmp/remotebed/rbt7
RB_SSH_CONFIG=/tmp/remotebed/rbt7/ssh_config
RB_KEY=/tmp/remotebed/rbt7/client_key
RB_KNOWN_HOSTS=/tmp/remotebed/rbt7/known_hosts
RB_WRONG_KNOWN_HOSTS=/tmp/remotebed/rbt7/wrong_known_hosts
RB_SSHD_PID=4242
RB_UNSHARE_PID=4240
RB_SSHD_LOG=/tmp/remotebed/rbt7/sshd.log
RB_REMOTE_HOME=/home/rbremote
RB_REMOTE_HOME_LOCAL=/tmp/remotebed/rbt7/home
RB_SOMETHING_NEW=ignored
`

func TestParseEnv(t *testing.T) {
	e, err := ParseEnv([]byte(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		N: 7, Netns: "rbt7", Host: "rbt7", HostNoRsync: "rbt7-norsync", Addr: "10.213.7.2",
		LocalAddr: "10.213.7.1", HostIf: "rbh7", User: "rbremote", UID: 1001, GID: 1002,
		Dir: "/tmp/remotebed/rbt7", SSHConfig: "/tmp/remotebed/rbt7/ssh_config",
		Key: "/tmp/remotebed/rbt7/client_key", KnownHosts: "/tmp/remotebed/rbt7/known_hosts",
		WrongKnownHosts: "/tmp/remotebed/rbt7/wrong_known_hosts", SSHDPID: 4242, UnsharePID: 4240,
		SSHDLog: "/tmp/remotebed/rbt7/sshd.log", RemoteHome: "/home/rbremote",
		RemoteHomeLocal: "/tmp/remotebed/rbt7/home",
	}
	if e != want {
		t.Errorf("ParseEnv =\n%+v\nwant\n%+v", e, want)
	}

	for _, bad := range []string{
		strings.Replace(sampleEnv, "RB_SSHD_PID=4242\n", "", 1),
		strings.Replace(sampleEnv, "RB_SSHD_PID=4242", "RB_SSHD_PID=x", 1),
		strings.Replace(sampleEnv, "RB_HOST=rbt7", "RB_HOST=", 1),
		sampleEnv + "no equals sign\n",
	} {
		if e, err := ParseEnv([]byte(bad)); err == nil || e != (Env{}) {
			t.Errorf("ParseEnv accepted a broken env file: %+v, %v", e, err)
		}
	}
}

func TestInstanceFromEnvPath(t *testing.T) {
	for p, want := range map[string]int{
		"/tmp/remotebed/rbt12/env": 12,
		"/tmp/remotebed/rbt/env":   0,
		"/tmp/remotebed/x12/env":   0,
	} {
		n, ok := instanceFromEnvPath(p)
		if n != want && ok || ok != (want != 0) {
			t.Errorf("instanceFromEnvPath(%q) = %d, %v; want %d", p, n, ok, want)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// sshExit runs the system ssh with args and returns its exit code and stderr.
func sshExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), "ssh", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("ssh %v: %v", args, err)
	return 0, ""
}

// TestUpSSHDown is the smoke test: a host comes up, plain ssh reaches it by alias and by
// address, and taking it down leaves nothing of it behind.
func TestUpSSHDown(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	h, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			h.Close()
		}
	}()
	e := h.Env
	if !NamespaceExists(e.Netns) || !alive(e.SSHDPID) || !alive(e.UnsharePID) {
		t.Fatalf("instance %s not running: %+v", e.Netns, e)
	}

	out, err := h.SSH(ctx(t), `id -un; echo "$HOME"`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "rbremote\n/home/rbremote\n"; got != want {
		t.Errorf("remote id and HOME = %q, want %q", got, want)
	}
	// A scheduler's default command line, without -F, by address.
	if code, stderr := sshExit(t, "-oBatchMode=yes", "-oConnectTimeout=10", e.Addr, "true"); code != 0 {
		t.Errorf("ssh %s true: exit %d: %s", e.Addr, code, stderr)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if NamespaceExists(e.Netns) {
		t.Errorf("namespace %s left behind", e.Netns)
	}
	for _, p := range []string{e.Dir, "/etc/ssh/ssh_config.d/" + e.Netns + ".conf", "/sys/class/net/" + e.HostIf, h.scriptDir} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	if alive(e.SSHDPID) || alive(e.UnsharePID) {
		t.Errorf("sshd %d or unshare %d still running", e.SSHDPID, e.UnsharePID)
	}
	// The guard route answers for the address now.
	if code, stderr := sshExit(t, "-oBatchMode=yes", "-oConnectTimeout=2", e.Addr, "true"); code != 255 {
		t.Errorf("ssh to a removed host: exit %d, want 255: %s", code, stderr)
	}
}

// TestRemoteEnvironment checks what the remote offers: its user and home, the private /tmp,
// the PID namespace, the full, read-only and locked directories and port 2222's PATH.
func TestRemoteEnvironment(t *testing.T) {
	h := Shared(t)
	if err := h.WriteFile("sub/dir/hello.txt", []byte("hi\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	marker, err := os.CreateTemp("", "testbed-marker-")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	defer os.Remove(marker.Name())

	for _, c := range []struct{ cmd, want string }{
		{`stat -c '%U %a %s' sub/dir/hello.txt sub/dir sub`, "rbremote 640 3\nrbremote 755 4096\nrbremote 755 4096\n"},
		{`test -e ` + marker.Name() + ` && echo visible || echo private`, "private\n"},
		{`cat /proc/1/comm`, "sshd\n"},
		{`df --output=size -k ~/full ~/ro | tail -n +2 | tr -d ' '`, "64\n64\n"},
		{`head -c 100000 /dev/zero >full/filler 2>/dev/null; echo $?; rm -f full/filler`, "1\n"},
		{`touch ro/x 2>&1 | grep -c 'Read-only file system'`, "1\n"},
		{`touch locked/x 2>&1 | grep -c 'Permission denied'`, "1\n"},
		{`command -v rsync`, "/usr/bin/rsync\n"},
	} {
		out, err := h.SSH(ctx(t), c.cmd)
		if err != nil {
			t.Errorf("%s: %v", c.cmd, err)
			continue
		}
		if string(out) != c.want {
			t.Errorf("%s: got %q, want %q", c.cmd, out, c.want)
		}
	}

	cmd := exec.CommandContext(ctx(t), "ssh", h.Env.HostNoRsync, "command -v rsync || echo none: $PATH")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh %s: %v", h.Env.HostNoRsync, err)
	}
	if want := "none: " + h.Env.Dir + "/norsync-bin\n"; string(out) != want {
		t.Errorf("port 2222: got %q, want %q", out, want)
	}
}

func TestWrongHostKey(t *testing.T) {
	h := Shared(t)
	code, stderr := sshExit(t, "-oUserKnownHostsFile="+h.Env.WrongKnownHosts, h.Env.Host, "true")
	if code != 255 || !strings.Contains(stderr, "Host key verification failed") {
		t.Errorf("wrong host key: exit %d, stderr %q", code, stderr)
	}
}

// TestCrashAndRestart kills sshd, which ends every remote process, and brings it back with the
// same home.
func TestCrashAndRestart(t *testing.T) {
	h := Up(t)
	if err := h.WriteFile("kept", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A remote process that would outlive its ssh session.
	if _, err := h.SSH(ctx(t), "nohup sleep 300 >/dev/null 2>&1 </dev/null & echo started"); err != nil {
		t.Fatal(err)
	}
	old := h.Env
	if err := h.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(10*time.Second, func() bool {
		pids, err := h.Processes()
		return err == nil && len(pids) == 0
	}, "the processes of %s to end", old.Netns); err != nil {
		t.Fatal(err)
	}
	code, stderr := sshExit(t, "-oConnectTimeout=2", old.Host, "true")
	if code != 255 || !strings.Contains(stderr, "Connection refused") {
		t.Errorf("ssh to a crashed host: exit %d, stderr %q", code, stderr)
	}

	if err := h.Restart(); err != nil {
		t.Fatal(err)
	}
	if h.Env.SSHDPID == old.SSHDPID {
		t.Errorf("Restart did not refresh the sshd PID")
	}
	out, err := h.SSH(ctx(t), "cat kept")
	if err != nil || string(out) != "x" {
		t.Errorf("after restart: %q, %v", out, err)
	}
}

func TestBlackhole(t *testing.T) {
	h := Up(t)
	undo, err := h.Blackhole()
	if err != nil {
		t.Fatal(err)
	}
	code, stderr := sshExit(t, "-oConnectTimeout=1", h.Env.Host, "true")
	if code != 255 || !strings.Contains(stderr, "timed out") {
		t.Errorf("ssh through a blackhole: exit %d, stderr %q", code, stderr)
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if code, stderr := sshExit(t, h.Env.Host, "true"); code != 0 {
		t.Errorf("after undo: exit %d, stderr %q", code, stderr)
	}
}

func TestSignalStopContinue(t *testing.T) {
	h := Up(t)
	if err := h.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	code, stderr := sshExit(t, "-oConnectTimeout=1", h.Env.Host, "true")
	if err := h.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code != 255 || !strings.Contains(stderr, "banner exchange") {
		t.Errorf("ssh to a frozen sshd: exit %d, stderr %q", code, stderr)
	}
}

// TestParallelHosts brings up hosts at once; each gets its own number and works.
func TestParallelHosts(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	const count = 4
	hosts := make([]*Host, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() { hosts[i], errs[i] = Start(nil) })
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, h := range hosts {
		if errs[i] != nil {
			t.Error(errs[i])
			continue
		}
		defer func() {
			if err := h.Close(); err != nil {
				t.Error(err)
			}
		}()
		if seen[h.Env.N] {
			t.Errorf("instance %d handed out twice", h.Env.N)
		}
		seen[h.Env.N] = true
		if out, err := h.SSH(ctx(t), "echo ok"); err != nil || string(out) != "ok\n" {
			t.Errorf("%s: %q, %v", h.Env.Host, out, err)
		}
	}
}

// TestFailedUpLeavesNothing makes sshd refuse its configuration: up fails with sshd's
// complaint, and its EXIT trap removes the half-made instance.
func TestFailedUpLeavesNothing(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	var b [8]byte
	rand.Read(b[:])
	mark := "Bogus" + hex.EncodeToString(b[:])
	h, err := Start(&Options{First: 200, SSHDExtra: mark + " yes"})
	if err == nil {
		h.Close()
		t.Fatal("up succeeded with a bad sshd option")
	}
	msg := err.Error()
	if !strings.Contains(msg, "Bad configuration option: "+mark) {
		t.Errorf("error does not carry sshd's complaint: %v", err)
	}
	var n int
	if i := strings.Index(msg, "up of rbt"); i < 0 {
		t.Fatalf("error does not name the instance: %v", err)
	} else if _, err := fmt.Sscanf(msg[i:], "up of rbt%d failed", &n); err != nil {
		t.Fatalf("cannot read the instance number: %v", err)
	}
	// Another test binary may have taken the number since: only our marker proves a leak.
	for _, p := range []string{
		filepath.Join(baseDir, fmt.Sprintf("rbt%d", n), "sshd_config"),
		fmt.Sprintf("/etc/ssh/ssh_config.d/rbt%d.conf", n),
	} {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(mark)) {
			t.Errorf("%s left behind", p)
		}
	}
	if NamespaceExists(fmt.Sprintf("rbt%d", n)) {
		if _, err := os.Stat(filepath.Join(baseDir, fmt.Sprintf("rbt%d", n))); err != nil {
			t.Errorf("namespace rbt%d left behind without its directory", n)
		}
	}
}
