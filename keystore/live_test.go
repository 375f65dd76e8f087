package keystore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func init() { helpers["scheduler"] = helperScheduler }

func TestShlexQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "''",
		"plain":            "plain",
		"/usr/bin/cylc":    "/usr/bin/cylc",
		"--host=localhost": "--host=localhost",
		"a@b%c+d=e:f,g.h":  "a@b%c+d=e:f,g.h",
		"two words":        "'two words'",
		"it's":             `'it'"'"'s'`,
		"$HOME":            "'$HOME'",
		"é":                "'é'",
		"a\tb":             "'a\tb'",
	} {
		if got := shlexQuote(in); got != want {
			t.Errorf("shlexQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := shlexJoin([]string{"cylc", "play", "a b", ""}); got != "cylc play 'a b' ''" {
		t.Errorf("shlexJoin: %s", got)
	}
}

func TestProcessCommand(t *testing.T) {
	got, err := ProcessCommand(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := shlexJoin(os.Args); got != want {
		t.Fatalf("own command %q, want %q", got, want)
	}
	for _, pid := range []int{0, -1} {
		if _, err := ProcessCommand(pid); !errors.Is(err, ErrNoProcess) {
			t.Errorf("pid %d: %v", pid, err)
		}
	}
	// A child that has exited and been reaped no longer exists.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := ProcessCommand(cmd.Process.Pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("reaped child: %v", err)
	}
}

func TestLockService(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	l1, err := LockService(srv)
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, srv, 0o700)
	if _, err := LockService(srv); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	var nilLock *Lock
	if err := nilLock.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockService(srv)
	if err != nil {
		t.Fatalf("relock: %v", err)
	}
	l2.Unlock()
	if entries, _ := os.ReadDir(srv); len(entries) != 0 {
		t.Fatalf("locking added files: %v", entries)
	}
}

// TestClaimServiceWithoutFlock: on a file system that cannot flock a directory (NFS
// refuses with EBADF), a scheduler still starts, saying so, and the contact-file check
// still guards the directory; a real lock conflict still refuses.
func TestClaimServiceWithoutFlock(t *testing.T) {
	defer func(f func(*os.File) error) { lockDir = f }(lockDir)
	lockDir = func(f *os.File) error {
		return &FileError{Path: f.Name(), Err: fmt.Errorf("%w: %w", ErrLockUnsupported, syscall.EBADF)}
	}
	srv := ServiceDir(t.TempDir())
	var r logRecorder
	l, err := ClaimService(srv, r.logf)
	if err != nil {
		t.Fatalf("ClaimService: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if len(r.lines) != 1 || !strings.Contains(r.lines[0], "relying on the contact file alone") {
		t.Errorf("log: %q", r.lines)
	}
	// The contact file of a live scheduler (this process) still refuses the claim.
	self, err := ProcessCommand(os.Getpid())
	if err != nil {
		t.Skip("cannot read this process's command")
	}
	if err := WriteContact(srv, Contact{ContactHost: "localhost", ContactPort: "1", ContactPID: strconv.Itoa(os.Getpid()), ContactCommand: self}); err != nil {
		t.Fatal(err)
	}
	var ae *AliveError
	if _, err := ClaimService(srv, r.logf); !errors.As(err, &ae) {
		t.Errorf("a live scheduler's contact file: %v", err)
	}
	lockDir = lockFile
	held, err := LockService(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	if _, err := ClaimService(srv, r.logf); !errors.Is(err, ErrLocked) {
		t.Errorf("a held lock: %v", err)
	}
}

type logRecorder struct{ lines []string }

func (r *logRecorder) logf(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// A live process with the recorded command is alive; the same PID with another command, or
// a dead PID, is stale: the contact file goes, with Cylc's log line.
func TestDetectOldContact(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("liveness test: needs sleep(1)")
	}
	cmd := exec.Command(sleep, "1000")
	cmd.Args[0] = "sleep"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	srv := ServiceDir(t.TempDir())
	if err := os.Mkdir(srv, 0o700); err != nil {
		t.Fatal(err)
	}
	contact := filepath.Join(srv, ContactFileName)
	write := func(command string) {
		t.Helper()
		c := Contact{ContactHost: host, ContactPort: "43001", ContactPID: strconv.Itoa(cmd.Process.Pid),
			ContactCommand: command, ContactID: "flow/run1"}
		if err := WriteContact(srv, c); err != nil {
			t.Fatal(err)
		}
	}
	var log logRecorder

	if err := DetectOldContact(srv, log.logf); err != nil || len(log.lines) != 0 {
		t.Fatalf("no contact file: %v %q", err, log.lines)
	}

	write("sleep 1000")
	err = DetectOldContact(srv, log.logf)
	var alive *AliveError
	if !errors.As(err, &alive) {
		t.Fatalf("live process: got %v", err)
	}
	if alive.PID != cmd.Process.Pid || alive.Host != host || alive.ID != "flow/run1" || alive.Port != "43001" || alive.Path != contact {
		t.Fatalf("AliveError %+v", alive)
	}
	if !strings.Contains(err.Error(), "flow/run1") || !strings.HasPrefix(err.Error(), "keystore: workflow contact file exists: ") {
		t.Errorf("message %q", err)
	}
	if _, err := os.Stat(contact); err != nil {
		t.Fatal("contact file of a live scheduler removed")
	}

	write("sleep 999")
	if err := DetectOldContact(srv, log.logf); err != nil {
		t.Fatalf("PID running another command: %v", err)
	}
	if _, err := os.Stat(contact); !os.IsNotExist(err) {
		t.Fatal("stale contact file kept")
	}
	if len(log.lines) != 1 || log.lines[0] != "Removed contact file for flow/run1 (workflow no longer running)." {
		t.Fatalf("log %q", log.lines)
	}

	write("sleep 1000")
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	if err := DetectOldContact(srv, nil); err != nil {
		t.Fatalf("dead PID: %v", err)
	}
	if _, err := os.Stat(contact); !os.IsNotExist(err) {
		t.Fatal("stale contact file of a dead process kept")
	}
}

func TestDetectOldContactUndecided(t *testing.T) {
	srv := ServiceDir(t.TempDir())
	if err := os.Mkdir(srv, 0o700); err != nil {
		t.Fatal(err)
	}
	contact := filepath.Join(srv, ContactFileName)
	self := strconv.Itoa(os.Getpid())
	for name, tc := range map[string]struct {
		c    Contact
		want error
	}{
		"incomplete":  {Contact{ContactHost: "localhost", ContactPort: "1", ContactPID: self}, ErrMalformed},
		"remote host": {Contact{ContactHost: "elsewhere.invalid", ContactPort: "1", ContactPID: self, ContactCommand: "x"}, ErrCannotTell},
		"bad pid":     {Contact{ContactHost: "localhost", ContactPort: "1", ContactPID: "x", ContactCommand: "x"}, ErrCannotTell},
	} {
		t.Run(name, func(t *testing.T) {
			if err := WriteContact(srv, tc.c); err != nil {
				t.Fatal(err)
			}
			if err := DetectOldContact(srv, nil); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(contact); err != nil {
				t.Fatal("contact file removed although undecided")
			}
		})
	}
	// An unreadable contact file means a dead workflow to Cylc: logged, left to be replaced.
	if err := os.WriteFile(contact, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log logRecorder
	if err := DetectOldContact(srv, log.logf); err != nil || len(log.lines) != 1 {
		t.Fatalf("unparsable: %v %q", err, log.lines)
	}
	if err := os.Remove(contact); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(contact, 0o700); err != nil {
		t.Fatal(err)
	}
	log.lines = nil
	if err := DetectOldContact(srv, log.logf); err != nil || len(log.lines) != 1 || !strings.Contains(log.lines[0], "not a regular file") {
		t.Fatalf("a directory named contact: %v %q", err, log.lines)
	}
}

func TestIsLocalHost(t *testing.T) {
	me, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(me, ".")
	for h, want := range map[string]bool{
		"localhost":          true,
		"LOCALHOST.":         true,
		"127.0.0.1":          true,
		"::1":                true,
		me:                   true,
		strings.ToUpper(me):  true,
		"":                   false,
		"elsewhere.invalid":  false,
		"192.0.2.1":          false, // TEST-NET-1, never a local address
		first + "x.invalid":  false,
		"a." + me + ".other": false,
	} {
		if got := isLocalHost(h); got != want {
			t.Errorf("isLocalHost(%q) = %v, want %v", h, got, want)
		}
	}
	// The same first label, one name short: local only if the name resolves here (two
	// clusters may each have a "login1").
	if strings.Contains(me, ".") {
		return // the cases below need a short os.Hostname
	}
	defer func(f func(context.Context, string) ([]net.IPAddr, error)) { lookupIPAddr = f }(lookupIPAddr)
	resolves := map[string]net.IP{me + ".here.example": net.ParseIP("127.0.1.1"), me + ".there.example": net.ParseIP("192.0.2.7")}
	lookupIPAddr = func(_ context.Context, h string) ([]net.IPAddr, error) {
		if ip, ok := resolves[h]; ok {
			return []net.IPAddr{{IP: ip}}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: h, IsNotFound: true}
	}
	for h, want := range map[string]bool{
		me + ".here.example":  true,  // resolves to a loopback address
		me + ".there.example": false, // resolves elsewhere
		me + ".invalid":       false, // does not resolve
	} {
		if got := isLocalHost(h); got != want {
			t.Errorf("isLocalHost(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestOtherClusterContactKept: a contact file written on a host of another cluster whose
// short name is this host's is not judged stale and removed: its process cannot be seen
// from here.
func TestOtherClusterContactKept(t *testing.T) {
	me, err := os.Hostname()
	if err != nil || strings.Contains(me, ".") {
		t.Skip("needs a short host name")
	}
	srv := t.TempDir()
	other := me + ".cluster-b.invalid"
	if err := WriteContact(srv, Contact{ContactHost: other, ContactPort: "43001", ContactPID: "999999999", ContactCommand: "cylc play flow"}); err != nil {
		t.Fatal(err)
	}
	err = DetectOldContact(srv, t.Logf)
	if !errors.Is(err, ErrCannotTell) {
		t.Errorf("DetectOldContact: %v, want ErrCannotTell", err)
	}
	if _, err := os.Stat(filepath.Join(srv, ContactFileName)); err != nil {
		t.Errorf("the contact file of a scheduler on %s was removed: %v", other, err)
	}
}

// helperScheduler claims $KEYSTORE_SRV as a scheduler would, writes its contact file with
// its own PID and command, prints "ready", optionally releases the lock (to stand for a
// Python Cylc scheduler, which takes none) and then waits for stdin to close.
func helperScheduler() error {
	srv := os.Getenv("KEYSTORE_SRV")
	l, err := ClaimService(srv, nil)
	if err != nil {
		return err
	}
	if err := KeyHousekeeping(srv); err != nil {
		return err
	}
	if _, err := CreateServerKeys(srv, nil); err != nil {
		return err
	}
	cmdline, err := ProcessCommand(os.Getpid())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	c := Contact{ContactHost: host, ContactPort: "43001", ContactPID: strconv.Itoa(os.Getpid()),
		ContactCommand: cmdline, ContactID: "flow/run1", ContactAPI: ContactAPIVersion}
	if err := WriteContact(srv, c); err != nil {
		return err
	}
	if os.Getenv("KEYSTORE_UNLOCK") != "" {
		if err := l.Unlock(); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// A second scheduler on a live run directory changes nothing: refused by the lock, or,
// when the first holds none (a Python scheduler), by the contact file's live process.
// Once the first dies, the second takes over and removes the stale contact file.
func TestSecondSchedulerLeavesKeysAlone(t *testing.T) {
	for _, unlock := range []bool{false, true} {
		t.Run(fmt.Sprintf("first-holds-lock=%v", !unlock), func(t *testing.T) {
			srv := ServiceDir(filepath.Join(t.TempDir(), "run"))
			env := []string{"KEYSTORE_SRV=" + srv}
			if unlock {
				env = append(env, "KEYSTORE_UNLOCK=1")
			}
			first := helperCmd(t, "scheduler", env...)
			stdin, err := first.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := first.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			first.Stderr = os.Stderr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			exited := false
			t.Cleanup(func() {
				if !exited {
					first.Process.Signal(syscall.SIGKILL)
					first.Wait()
				}
			})
			if line := waitLine(t, bufio.NewReader(stdout)); line != "ready" {
				t.Fatalf("first scheduler said %q", line)
			}
			before := snapshot(t, srv)

			var log logRecorder
			l, err := ClaimService(srv, log.logf)
			var alive *AliveError
			switch {
			case !unlock && !errors.Is(err, ErrLocked):
				t.Fatalf("second claim while locked: %v", err)
			case unlock && !errors.As(err, &alive):
				t.Fatalf("second claim with a live contact file: %v", err)
			case unlock && alive.PID != first.Process.Pid:
				t.Fatalf("AliveError names pid %d, want %d", alive.PID, first.Process.Pid)
			}
			if l != nil {
				t.Fatal("a lock was returned with an error")
			}
			if d := diffSnapshots(before, snapshot(t, srv)); d != "" {
				t.Fatalf("the second scheduler changed .service: %s", d)
			}
			if len(log.lines) != 0 {
				t.Fatalf("logged %q", log.lines)
			}

			// The first scheduler dies without cleaning up.
			first.Process.Signal(syscall.SIGKILL)
			first.Wait()
			stdin.Close()
			exited = true
			l, err = ClaimService(srv, log.logf)
			if err != nil {
				t.Fatalf("claim after the first died: %v", err)
			}
			defer l.Unlock()
			if len(log.lines) != 1 || log.lines[0] != "Removed contact file for flow/run1 (workflow no longer running)." {
				t.Fatalf("log %q", log.lines)
			}
			if _, err := os.Stat(filepath.Join(srv, ContactFileName)); !os.IsNotExist(err) {
				t.Fatal("stale contact file kept")
			}
		})
	}
}
