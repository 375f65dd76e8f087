package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/curvezmq/curvezmq/rsyncx"
)

// TestTargetRequests: the install target requests reply at once, check their arguments, and
// run the target's steps in the background; the localhost target skips them all. Needs no
// ssh: the remote target's ssh program does not exist.
func TestTargetRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	runDir := filepath.Join(t.TempDir(), "req")
	s := h.startScheduler(runDir, "--ssh", "no-such-ssh -oBatchMode=yes", "--target", "localhost=somewhere")
	c := s.waitContact()

	if v := h.targets(runDir)["localhost"]; v.Status != rsyncx.StatusInstallDone || v.Host != "somewhere" {
		t.Errorf("localhost: %+v", v)
	}
	var reply map[string]targetView
	h.request(runDir, &reply, "add-target", "name=hpc", "host=user@hpc1.example")
	if v := reply["hpc"]; v.Status != rsyncx.StatusInitInProgress || v.Host != "user@hpc1.example" {
		t.Errorf("add-target replied %+v", reply)
	}
	v := h.waitTarget(s, "hpc", false)
	if v.Status != rsyncx.StatusInitFailed || !strings.Contains(v.Error, `cannot run "no-such-ssh"`) {
		t.Errorf("hpc: %+v", v)
	}
	if got := h.targets(runDir); len(got) != 2 {
		t.Errorf("targets: %+v", got)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"add-target", "name=hpc", "host=h"}, "install target exists: hpc"},
		{[]string{"add-target", "name=x;y", "host=h"}, "invalid install target"},
		{[]string{"add-target", "name=hpc2", "host=-oProxyCommand=x"}, "starts with '-'"},
		{[]string{"add-target", "name=hpc2"}, `add-target: missing argument "host"`},
		{[]string{"add-target", "name=hpc2", "host=h", "port=22"}, `add-target: unknown argument "port"`},
		{[]string{"remove-target", "name=nope"}, `no such install target: "nope"`},
		{[]string{"targets", "x=1"}, `targets: unknown argument "x"`},
	} {
		expect(t, h.run(append([]string{"client", "--run-dir", runDir}, c.args...)...), exitFailed, c.msg)
	}
	got, err := sendRequest(t, s.srvDir, c, `{"command":"add-target","args":{"name":"a","host":7}}`)
	if err != nil || got != `{"error":{"message":"add-target: argument \"host\" must be a string"}}` {
		t.Errorf("a number as host: %s, %v", got, err)
	}

	// reload restarts every target; remove-target takes them away.
	var all map[string]targetView
	h.request(runDir, &all, "reload")
	if len(all) != 2 || all["hpc"].Status != rsyncx.StatusInitInProgress {
		t.Errorf("reload replied %+v", all)
	}
	if v := h.waitTarget(s, "hpc", false); v.Status != rsyncx.StatusInitFailed {
		t.Errorf("hpc after reload: %+v", v)
	}
	for _, name := range []string{"hpc", "localhost"} {
		h.request(runDir, &reply, "remove-target", "name="+name)
		h.waitTarget(s, name, true)
	}
	if got := h.targets(runDir); len(got) != 0 {
		t.Errorf("targets after removing all: %+v", got)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(); code != 0 {
		t.Errorf("exit %d:\n%s", code, s.stderr.String())
	}
	assertStopped(t, s.srvDir)
	raw, _ := json.Marshal(targetView{Host: "h", Status: rsyncx.StatusInstallDone})
	if string(raw) != `{"host":"h","status":"REMOTE FILE INSTALL DONE"}` {
		t.Errorf("a target's JSON: %s", raw)
	}
}

// TestSchedulerTargetUsage: install target flags are checked before anything is made.
func TestSchedulerTargetUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dir := filepath.Join(t.TempDir(), "r")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--target", "hpc"}, "want NAME=HOST"},
		{[]string{"--target", "a=b", "--target", "a=c"}, `install target "a" given twice`},
		{[]string{"--target", "x y=h"}, "invalid install target"},
		{[]string{"--target", "hpc=h:1"}, "only letters, digits"},
		{[]string{"--target", "hpc=h", "--ssh", "ssh 'unterminated"}, "unterminated quote"},
		{[]string{"--ssh", `ssh \`}, "ends with a backslash"},
		{[]string{"--target", "hpc=h", "--remote-command", "bin/x\ny"}, "control characters"},
		{[]string{"--install-binary", filepath.Join(dir, "nope")}, "not a directory"},
		{[]string{"--init-timeout", "soon"}, "want a duration"},
		{[]string{"--tidy-timeout", "-1s"}, "must be positive"},
	} {
		args := append([]string{"scheduler", "--run-dir", dir}, c.args...)
		expect(t, h.run(args...), 1, c.msg, "usage: curvezmq scheduler")
	}
}
