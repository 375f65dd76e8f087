package main

// Helpers that run the program as its own process.
//
// The program under test is this test binary: TestMain (remote_test.go) runs main when the
// binary is called "curvezmq", so a symbolic link of that name is the program, built with
// the same flags as the tests and without a separate build step. Every process gets a
// deadline and every wait is bounded.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// commandWait bounds one run of a command.
const commandWait = 30 * time.Second

// program returns the path of the curvezmq program for a test.
func program(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "curvezmq")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// harness runs the program in a fresh working directory, with HOME set to another and none
// of the variables that could lead it to a real run directory.
type harness struct {
	t    testing.TB
	prog string
	home string
	wd   string // the working directory of every process
	env  []string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, prog: program(t), home: t.TempDir(), wd: t.TempDir()}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "CURVEZMQ_RUN_DIR" {
			h.env = append(h.env, kv)
		}
	}
	h.env = append(h.env, "HOME="+h.home)
	return h
}

// result is the outcome of one command.
type result struct {
	args           []string
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("curvezmq %q: exit %d after %v\nstdout:\n%s\nstderr:\n%s", r.args, r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run runs the program and waits for it (at most commandWait).
func (h *harness) run(args ...string) result { return h.runEnv(nil, args...) }

// runEnv is run with extra environment variables.
func (h *harness) runEnv(extra []string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.prog, args...)
	cmd.Env = append(slices.Clone(h.env), extra...)
	cmd.Dir = h.wd
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		h.t.Fatalf("did not finish within %v: %v", commandWait, r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("curvezmq %q: %v", args, err)
	}
	return r
}

// expect checks a result's exit code and that stderr contains each of msgs.
func expect(t testing.TB, r result, code int, msgs ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("want exit %d: %v", code, r)
		return
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("stderr lacks %q: %v", m, r)
		}
	}
}
