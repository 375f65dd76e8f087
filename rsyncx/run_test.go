package rsyncx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRunExit(t *testing.T) {
	res, err := Run(testCtx(t, time.Minute), []string{"sh", "-c", "echo out; echo err >&2; exit 0"}, nil)
	if err != nil || res.Code != 0 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.PID <= 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}

	for _, code := range []int{1, 3, 12, 255} {
		res, err := Run(testCtx(t, time.Minute), []string{"sh", "-c", "echo oops >&2; exit " + strconv.Itoa(code)}, nil)
		var xe *ExitError
		if !errors.As(err, &xe) || xe.Code != code || res.Code != code || xe.Stderr != "oops\n" {
			t.Errorf("exit %d: %+v, %v", code, res, err)
			continue
		}
		if errors.Is(err, ErrUnreachable) != (code == 255) {
			t.Errorf("exit %d: ErrUnreachable = %v", code, errors.Is(err, ErrUnreachable))
		}
		if want := "rsyncx: sh exited with status " + strconv.Itoa(code) + ": oops"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	}

	res, err = Run(testCtx(t, time.Minute), []string{"sh", "-c", "kill -TERM $$"}, nil)
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code != -1 || xe.Signal != "terminated" || res.Code != -1 {
		t.Errorf("killed by a signal: %+v, %v", res, err)
	}
}

func TestRunStdinAndLimits(t *testing.T) {
	in := strings.Repeat("line of input\n", 1000)
	res, err := Run(testCtx(t, time.Minute), []string{"cat"}, &RunOptions{Stdin: strings.NewReader(in)})
	if err != nil || string(res.Stdout) != in || res.StdoutTruncated {
		t.Fatalf("cat: %d bytes, truncated %v, %v", len(res.Stdout), res.StdoutTruncated, err)
	}

	// Output beyond the limits is read and dropped; the command is not broken by it.
	res, err = Run(testCtx(t, time.Minute), []string{"sh", "-c", "head -c 100000 /dev/zero; head -c 5000 /dev/zero >&2"},
		&RunOptions{MaxStdout: 1000, MaxStderr: 10})
	if err != nil || len(res.Stdout) != 1000 || !res.StdoutTruncated || len(res.Stderr) != 10 || !res.StderrTruncated {
		t.Fatalf("limits: stdout %d %v, stderr %d %v, %v", len(res.Stdout), res.StdoutTruncated, len(res.Stderr), res.StderrTruncated, err)
	}

	// Stdin empty by default; Dir and Env apply.
	dir := t.TempDir()
	res, err = Run(testCtx(t, time.Minute), []string{"sh", "-c", `wc -c; pwd; echo "$X"`},
		&RunOptions{Dir: dir, Env: []string{"X=y", "PATH=" + os.Getenv("PATH")}})
	if want := "0\n" + dir + "\ny\n"; err != nil || strings.ReplaceAll(string(res.Stdout), " ", "") != want {
		t.Errorf("defaults: %q, %v; want %q", res.Stdout, err, want)
	}
}

func TestRunNotFound(t *testing.T) {
	for _, name := range []string{"curvezmq-no-such-program", filepath.Join(t.TempDir(), "missing")} {
		res, err := Run(testCtx(t, time.Minute), []string{name, "x"}, nil)
		if !errors.Is(err, exec.ErrNotFound) || res.PID != 0 || res.Code != -1 {
			t.Errorf("%s: %+v, %v; want exec.ErrNotFound", name, res, err)
		}
		if !strings.HasPrefix(err.Error(), "rsyncx: ") {
			t.Errorf("message %q lacks the prefix", err)
		}
	}
	// A missing working directory is not a missing program.
	_, err := Run(testCtx(t, time.Minute), []string{"true"}, &RunOptions{Dir: filepath.Join(t.TempDir(), "gone")})
	if err == nil || errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing Dir: %v", err)
	}
	if _, err := Run(context.Background(), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty argv: %v", err)
	}
}

// TestRunTimeoutKillsGroup: a command whose children hold the output pipes open is killed,
// all of it, at the deadline, and Run returns without waiting for the children.
func TestRunTimeoutKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, []string{"sh", "-c", "sleep 30 & sleep 30 & echo started; wait"}, nil)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrTimeout", err)
	}
	if string(res.Stdout) != "started\n" {
		t.Errorf("stdout %q; output before the deadline is kept", res.Stdout)
	}
	// Far below the 30 s the children would hold the pipes: Run did not wait for them.
	if elapsed > 15*time.Second {
		t.Errorf("Run returned after %v", elapsed)
	}
	checkGroupGone(t, res.PID)
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, []string{"sh", "-c", "cat; sleep 30"}, &RunOptions{Stdin: cancelOnRead{cancel}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	checkGroupGone(t, res.PID)
}

// cancelOnRead cancels a context when the command's stdin is first read from (exec copies
// stdin only once the command has started), then reports the end of the input.
type cancelOnRead struct{ cancel context.CancelFunc }

func (c cancelOnRead) Read([]byte) (int, error) {
	c.cancel()
	return 0, io.EOF
}

// TestRunSweepsGroupOnExit: when the command exits, what it left running in its group is
// killed, so Run neither waits for it nor leaves it behind.
func TestRunSweepsGroupOnExit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the sweep after exit is Linux-only")
	}
	res, err := Run(testCtx(t, time.Minute), []string{"sh", "-c", "sleep 30 & echo started"}, nil)
	if err != nil || string(res.Stdout) != "started\n" || res.Code != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	checkGroupGone(t, res.PID)
}

// checkGroupGone waits (bounded) until no live process is in process group pgid.
func checkGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	if pgid <= 0 {
		t.Fatal("no process group")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has %v", pgid, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupMembers lists the live (non-zombie) processes of process group pgid, from /proc.
func groupMembers(pgid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestSummary(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"  one line \n":          "one line",
		"a\nb\n":                 "a / b",
		"a\r\nb\r\n":             "a / b",
		"bad \x1b[31m escape":    `"bad \x1b[31m escape"`,
		"bad \xff byte":          `"bad \xff byte"`,
		strings.Repeat("x", 600): "..." + strings.Repeat("x", 512),
	} {
		if got := summary(in); got != want {
			t.Errorf("summary(%q) = %q, want %q", in, got, want)
		}
	}
}
