package rsyncx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoteCommandNotAnOption: a remote command that starts with '-' is refused: it would
// reach ssh unquoted right after the host, and OpenSSH parses options after the destination
// too (here a ProxyCommand that would run a local program).
func TestRemoteCommandNotAnOption(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	script := filepath.Join(dir, "proxy.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Remote{Host: "nosuchhost.invalid", Target: "hpc", RemoteCommand: "-oProxyCommand=" + script}
	if argv, err := r.InitArgv("flow"); err == nil {
		t.Errorf("InitArgv accepted it: %q", argv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.Init(ctx, "flow", nil); err == nil {
		t.Error("Init ran")
	}
	if _, serr := os.Stat(marker); serr == nil {
		t.Errorf("the remote command %q was read by ssh as an option and ran %s locally", r.RemoteCommand, script)
	}
}

// TestIncludeServiceRefused: an install item ".service" would put --include=/.service/***
// before the rule that keeps all but server.key in .service: it is refused, and neither the
// in-process copier nor real rsync lets a secret out.
func TestIncludeServiceRefused(t *testing.T) {
	for _, item := range []string{".service", ".service/"} {
		if err := ValidInclude(item); err == nil {
			t.Errorf("ValidInclude(%q) accepted", item)
		}
	}
	run := t.TempDir()
	dest := filepath.Join(t.TempDir(), "dest")
	os.MkdirAll(filepath.Join(run, ".service", "client_public_keys"), 0o700)
	for _, f := range []string{"server.key", "server.key_secret", "client.key_secret", "contact", "client_public_keys/client_hpc.key"} {
		os.WriteFile(filepath.Join(run, ".service", f), []byte(f), 0o600)
	}
	out, err := CopyInstall(run, dest, []string{".service/"})
	t.Logf("CopyInstall: %q %v", out, err)
	for _, f := range []string{"server.key_secret", "client.key_secret", "contact", "client_public_keys"} {
		if _, err := os.Stat(filepath.Join(dest, ".service", f)); err == nil {
			t.Errorf(".service/%s left .service", f)
		}
	}
	if _, err := exec.LookPath("rsync"); err == nil {
		r := &Remote{Host: "h", Target: "hpc", Includes: []string{".service/"}}
		argv, err := r.InstallArgv(run, "flow")
		if err != nil {
			return // refused: nothing to run
		}
		// Run the rules with real rsync, locally.
		rargs := []string{"rsync"}
		for _, a := range argv[1:] {
			if strings.HasPrefix(a, "--rsh=") || strings.HasPrefix(a, "h:") {
				continue
			}
			rargs = append(rargs, a)
		}
		dest2 := filepath.Join(t.TempDir(), "d2")
		rargs = append(rargs, dest2+"/")
		res, err := Run(context.Background(), rargs, nil)
		t.Logf("rsync: %s %v", res.Stdout, err)
		if _, err := os.Stat(filepath.Join(dest2, ".service", "server.key_secret")); err == nil {
			t.Errorf("real rsync: .service/server.key_secret left .service")
		}
	}
}

// TestInstallLogConcurrentNumbers: file installs of several targets that end at the same
// moment (each target has its own goroutine in the scheduler) get a log number each.
func TestInstallLogConcurrentNumbers(t *testing.T) {
	run := t.TempDir()
	const n = 8
	paths := make(chan string, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			p, err := WriteInstallLog(run, LoadStart, "t"+string(rune('a'+i)), []string{"rsync"}, []byte("send x\n"), nil)
			if err != nil {
				t.Error(err)
			}
			paths <- p
		}()
	}
	close(start)
	seen := map[string]string{}
	for range n {
		p := filepath.Base(<-paths)
		num, _, _ := strings.Cut(p, "-")
		if q, ok := seen[num]; ok {
			t.Errorf("number %s used twice: %s and %s", num, q, p)
		}
		seen[num] = p
	}
}
