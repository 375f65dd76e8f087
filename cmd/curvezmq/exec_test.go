package main

// Helpers that run the program as its own process.
//
// The program under test is this test binary: TestMain (remote_test.go) runs main when the
// binary is called "curvezmq", so a symbolic link of that name is the program, built with
// the same flags as the tests (with -race, the scheduler's goroutines are checked too) and
// without a separate build step. Every process gets a deadline, is ended by its PID when
// its test ends, and every wait is bounded.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/keystore"
)

const (
	// commandWait bounds one run of a short command (keygen, client, a refused scheduler).
	commandWait = 30 * time.Second
	// schedulerLifetime bounds a scheduler process: it is killed after this long.
	schedulerLifetime = 2 * time.Minute
	// startWait bounds the wait for a scheduler's contact file, stopWait for its exit.
	startWait = 20 * time.Second
	stopWait  = 20 * time.Second
)

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
	gorace := "atexit_sleep_ms=0" // the race detector would hold every successful exit for 1 s
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", runDirEnv:
		case "GORACE":
			gorace = v + " " + gorace
		default:
			h.env = append(h.env, kv)
		}
	}
	h.env = append(h.env, "HOME="+h.home, "GORACE="+gorace)
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

// schedProc is a running scheduler.
type schedProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	runDir string
	srvDir string
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	code   int           // the exit code, once done
}

// startScheduler starts "curvezmq scheduler --run-dir runDir --ports 0-0 args..." and
// returns at once; waitContact waits for it to be ready.
func (h *harness) startScheduler(runDir string, args ...string) *schedProc {
	h.t.Helper()
	return h.startSchedulerArgs(runDir, append([]string{"scheduler", "--run-dir", runDir, "--ports", "0-0"}, args...)...)
}

// startSchedulerArgs starts the program with exactly args, as a scheduler on runDir.
func (h *harness) startSchedulerArgs(runDir string, args ...string) *schedProc {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), schedulerLifetime)
	cmd := exec.CommandContext(ctx, h.prog, args...)
	cmd.Env = h.env
	cmd.Dir = h.wd
	cmd.WaitDelay = time.Second
	p := &schedProc{t: h.t, cmd: cmd, runDir: runDir, srvDir: keystore.ServiceDir(runDir),
		stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		h.t.Fatal(err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
		close(p.done)
	}()
	h.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() // by PID: only the process this test started
			<-p.done
		}
		if h.t.Failed() {
			h.t.Logf("scheduler (pid %d) stderr:\n%s", cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

func (p *schedProc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *schedProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitContact waits until the scheduler has written its contact file and logged that it
// started, and returns the contact file.
func (p *schedProc) waitContact() keystore.Contact {
	p.t.Helper()
	deadline := time.Now().Add(startWait)
	for {
		c, err := keystore.ReadContact(p.srvDir)
		if err == nil && c[keystore.ContactPID] == strconv.Itoa(p.pid()) && strings.Contains(p.stderr.String(), "scheduler started") {
			return c
		}
		if p.exited() {
			p.t.Fatalf("scheduler exited with %d before writing its contact file:\n%s", p.code, p.stderr.String())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no contact file within %v (last error %v):\n%s", startWait, err, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *schedProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(stopWait):
		p.t.Fatalf("scheduler still running %v later:\n%s", stopWait, p.stderr.String())
		return 0
	}
}

func (p *schedProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// tree returns every regular file under dir with its content, by path relative to dir.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(b)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// names returns the sorted keys of a tree.
func names(files map[string]string) []string { return slices.Sorted(maps.Keys(files)) }
