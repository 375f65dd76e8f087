package keystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shlexJoin is Python's shlex.join: each argument quoted by shlex.quote, joined by spaces.
func shlexJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shlexQuote(a)
	}
	return strings.Join(q, " ")
}

// shlexQuote is Python's shlex.quote: an argument made only of [A-Za-z0-9_@%+=:,./-] stays
// as it is, the empty string becomes two single quotes, anything else is single-quoted with each ' written
// as '"'"'.
func shlexQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_@%+=:,./-", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Lock is an exclusive lock on a service directory, held from [LockService] until
// [Lock.Unlock] or the end of the process.
type Lock struct {
	mu sync.Mutex
	f  *os.File
}

// LockService creates srvDir (0700) if needed and takes an exclusive, non-blocking flock
// on the directory itself (no lock file is added to .service). If another process, or
// another LockService call in this one, holds it, the error wraps [ErrLocked]. The lock
// belongs to an open file that exec'd children do not inherit; it goes when the process
// ends, however it ends. flock is advisory: a Python Cylc scheduler does not take it,
// which is why [DetectOldContact] is also needed.
func LockService(srvDir string) (*Lock, error) {
	if err := ensureDir(srvDir); err != nil {
		return nil, err
	}
	f, err := os.Open(srvDir)
	if err != nil {
		return nil, fileErr(srvDir, err)
	}
	if err := lockDir(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// lockDir is lockFile; tests replace it to stand for file systems without flock.
var lockDir = lockFile

// Unlock releases the lock. Calling it again, or on a nil Lock, does nothing.
func (l *Lock) Unlock() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("keystore: unlocking the service directory: %w", err)
	}
	return nil
}

// AliveError reports a live scheduler on the run directory: [DetectOldContact] found a
// contact file whose process is running with the recorded command. Its message follows
// Cylc's CONTACT_FILE_EXISTS_MSG.
type AliveError struct {
	PID  int
	Host string
	ID   string
	Port string // CYLC_WORKFLOW_PORT as written
	Path string // the contact file
}

// Error says which workflow is running where.
func (e *AliveError) Error() string {
	return fmt.Sprintf("keystore: workflow contact file exists: %s: workflow %q is already running, listening at \"%s:%s\" (pid %d)",
		e.Path, e.ID, e.Host, e.Port, e.PID)
}

// DetectOldContact decides, as Cylc's detect_old_contact_file does, whether a scheduler
// is still running on the run directory whose service directory is srvDir:
//
//   - no contact file: nil;
//   - one that cannot be read or does not parse: nil (Cylc: the workflow should be dead);
//     the problem is logged and the file left for the new contact file to replace;
//   - a contact file without host, port, PID or command: an error (Cylc: "incomplete
//     data");
//   - its process is alive on this host with the recorded command: an [*AliveError];
//   - its process is gone, or the PID now runs another command: the file is stale, so it
//     is removed and logf gets "Removed contact file for <id> (workflow no longer
//     running)." and nil is returned;
//   - its host is not this one, or its process cannot be examined: an error wrapping
//     [ErrCannotTell] (Cylc would ask the other host over ssh; we do not).
//
// logf may be nil.
func DetectOldContact(srvDir string, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	path := filepath.Join(srvDir, ContactFileName)
	c, err := ReadContact(srvDir)
	if errors.Is(err, ErrNoContact) && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		logf("Ignoring an unreadable contact file (workflow should be dead): %v", err)
		return nil
	}
	for _, k := range []string{ContactHost, ContactPort, ContactPID, ContactCommand} {
		if _, ok := c[k]; !ok {
			return &FileError{Path: path, Err: fmt.Errorf("%w: contact file with incomplete data: no %s", ErrMalformed, k)}
		}
	}
	host, cmd := c[ContactHost], c[ContactCommand]
	id := c[ContactID]
	if id == "" {
		id = filepath.Base(filepath.Dir(filepath.Clean(srvDir)))
	}
	if !isLocalHost(host) {
		return fmt.Errorf("%w: its scheduler host %q is not this host", ErrCannotTell, host)
	}
	pid, err := strconv.Atoi(c[ContactPID])
	if err != nil || pid <= 0 {
		return fmt.Errorf("%w: invalid %s %q", ErrCannotTell, ContactPID, c[ContactPID])
	}
	got, err := ProcessCommand(pid)
	switch {
	case errors.Is(err, ErrNoProcess):
	case err != nil:
		return chain(ErrCannotTell, err)
	case got == cmd:
		return &AliveError{PID: pid, Host: host, ID: id, Port: c[ContactPort], Path: path}
	}
	if err := os.Remove(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			// Cylc logs this and carries on; the new contact file replaces it.
			logf("Failed to remove contact file for %s: %v", id, fileErr(path, err))
		}
		return nil
	}
	if err := syncDir(srvDir); err != nil {
		logf("%v", err)
	}
	logf("Removed contact file for %s (workflow no longer running).", id)
	return nil
}

// ClaimService is the start of a scheduler's run on srvDir, before any key housekeeping:
// [LockService], then [DetectOldContact]. On success the caller holds the lock and may call
// [KeyHousekeeping] and [CreateServerKeys]; on error the lock is not held and nothing in
// srvDir has changed (except a stale contact file, removed). Where the file system cannot
// lock the directory ([ErrLockUnsupported]), it says so through logf and relies on the
// contact file alone, as Cylc does.
func ClaimService(srvDir string, logf func(format string, args ...any)) (*Lock, error) {
	l, err := LockService(srvDir)
	if errors.Is(err, ErrLockUnsupported) {
		logf("Cannot lock %s (%v); relying on the contact file alone.", srvDir, err)
		l, err = &Lock{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := DetectOldContact(srvDir, logf); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// isLocalHost reports whether a contact file's host names this machine: localhost, a
// loopback or local interface address, this host name, or a name with the same first
// label, one of the two without a domain (Cylc writes the FQDN; os.Hostname is often the
// short name), that resolves to a local address: two clusters may each have a "login1". An
// unknown answer is "not local", which DetectOldContact reports as ErrCannotTell rather
// than guessing.
func isLocalHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return isLocalIP(ip)
	}
	me, err := os.Hostname()
	if err != nil || me == "" {
		return false
	}
	me = strings.ToLower(me)
	if h == me {
		return true
	}
	first := func(s string) string { l, _, _ := strings.Cut(s, "."); return l }
	short := !strings.Contains(h, ".") || !strings.Contains(me, ".")
	if !short || first(h) != first(me) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := lookupIPAddr(ctx, h)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if isLocalIP(a.IP) {
			return true
		}
	}
	return false
}

// resolveTimeout bounds the name lookup of isLocalHost.
const resolveTimeout = 3 * time.Second

// lookupIPAddr resolves a host name; tests replace it.
var lookupIPAddr = net.DefaultResolver.LookupIPAddr

// isLocalIP reports whether ip is a loopback address or one of this machine's.
func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
