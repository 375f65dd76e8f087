package rsyncx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// Default limits of [Run].
const (
	DefaultMaxStdout = 1 << 20  // bytes of stdout kept
	DefaultMaxStderr = 64 << 10 // bytes of stderr kept
	DefaultWaitDelay = 2 * time.Second
)

// RunOptions are the optional settings of [Run]; a nil *RunOptions means all defaults.
type RunOptions struct {
	// Stdin is the command's standard input; nil means empty (/dev/null). Unless it is an
	// *os.File, Run waits until the copy from it ends, so it must not block forever: a
	// bytes.Reader or a file is right, a network connection is not.
	Stdin io.Reader
	// Dir is the working directory; empty means the caller's.
	Dir string
	// Env is the environment; nil means the caller's.
	Env []string
	// MaxStdout and MaxStderr bound how much output is kept (the rest is read and dropped,
	// and the Result says so); zero means the default.
	MaxStdout, MaxStderr int
	// WaitDelay bounds the wait for the output pipes to close once the command has ended or
	// been killed; zero means DefaultWaitDelay.
	WaitDelay time.Duration
}

// Result is what [Run] saw of a command.
type Result struct {
	// Argv is the command line as run.
	Argv []string
	// PID is the process ID of the command, which is also its process group ID; 0 if the
	// command did not start.
	PID int
	// Code is the exit status, or -1 if the command did not start or a signal ended it.
	Code int
	// Stdout and Stderr hold the command's output, up to the limits.
	Stdout, Stderr []byte
	// StdoutTruncated and StderrTruncated report output beyond the limits.
	StdoutTruncated, StderrTruncated bool
}

// Run runs argv (never through a shell) and waits for it. The command gets a process group of
// its own. When ctx is done, the whole group is killed (rsync's ssh child and anything a
// command left behind holding its pipes) and Run returns within about WaitDelay. On Linux,
// whatever is left of the group when the command exits is killed too, so nothing outlives Run.
//
// Run returns a non-nil Result and one of these errors: nil for exit status 0; an
// [*ExitError] for another status or a signal (matching [ErrUnreachable] for 255); an error
// matching [ErrTimeout] and context.DeadlineExceeded when ctx's deadline passed, or
// context.Canceled when it was canceled; one matching exec.ErrNotFound when argv[0] does not
// exist; [ErrInvalid] for an empty argv.
func Run(ctx context.Context, argv []string, opts *RunOptions) (*Result, error) {
	res := &Result{Argv: append([]string(nil), argv...), Code: -1}
	if len(argv) == 0 || argv[0] == "" {
		return res, fmt.Errorf("%w: empty command", ErrInvalid)
	}
	var o RunOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxStdout <= 0 {
		o.MaxStdout = DefaultMaxStdout
	}
	if o.MaxStderr <= 0 {
		o.MaxStderr = DefaultMaxStderr
	}
	if o.WaitDelay <= 0 {
		o.WaitDelay = DefaultWaitDelay
	}
	if err := ctx.Err(); err != nil {
		return res, ctxError(argv[0], err)
	}

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if cmd.Err != nil {
		if errors.Is(cmd.Err, exec.ErrNotFound) || errors.Is(cmd.Err, fs.ErrNotExist) {
			return res, &notFoundError{name: argv[0], err: cmd.Err}
		}
		return res, fmt.Errorf("rsyncx: cannot run %q: %w", argv[0], cmd.Err)
	}
	cmd.Dir = o.Dir
	cmd.Env = o.Env
	cmd.Stdin = o.Stdin
	stdout := &cappedBuffer{max: o.MaxStdout}
	stderr := &cappedBuffer{max: o.MaxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	setProcessGroup(cmd)
	var canceled atomic.Bool
	cmd.Cancel = func() error {
		canceled.Store(true)
		return killGroup(cmd.Process.Pid)
	}
	cmd.WaitDelay = o.WaitDelay

	if o.Dir != "" {
		// Checked here: with SysProcAttr set, a missing directory would look like a missing
		// program.
		if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
			return res, fmt.Errorf("rsyncx: working directory %q: %w", o.Dir, cmp.Or(err, fs.ErrInvalid))
		}
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, &notFoundError{name: argv[0], err: err}
		}
		return res, fmt.Errorf("rsyncx: cannot run %q: %w", argv[0], err)
	}
	res.PID = cmd.Process.Pid
	if waitExitedNoReap(res.PID) {
		// The command has exited but is not yet reaped, so its process group ID cannot have
		// been reused: end whatever it left in the group.
		_ = killGroup(res.PID)
	}
	err := cmd.Wait()

	res.Stdout, res.StdoutTruncated = stdout.buf, stdout.dropped
	res.Stderr, res.StderrTruncated = stderr.buf, stderr.dropped
	if cmd.ProcessState != nil {
		res.Code = cmd.ProcessState.ExitCode()
	}
	if err == nil {
		return res, nil
	}
	if canceled.Load() {
		// The group was killed because ctx was done; that is the story, whatever the status.
		return res, ctxError(argv[0], ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		xe := &ExitError{Name: argv[0], Code: res.Code, Stderr: string(res.Stderr)}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			xe.Signal = ws.Signal().String()
		}
		return res, xe
	case errors.Is(err, exec.ErrWaitDelay):
		// Exit status 0, but something outside the process group kept the output pipes open.
		return res, fmt.Errorf("rsyncx: %s exited but its output was still held open after %v: %w", argv[0], o.WaitDelay, err)
	default:
		return res, fmt.Errorf("rsyncx: %s: %w", argv[0], err)
	}
}

func ctxError(name string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrTimeout, name, err)
	}
	return fmt.Errorf("rsyncx: %s: %w", name, err)
}

// cappedBuffer keeps the first max bytes written to it and counts the rest as dropped; it
// never fails a write, so the command is not killed by a broken pipe.
type cappedBuffer struct {
	buf     []byte
	max     int
	dropped bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		if len(p) > room {
			b.buf = append(b.buf, p[:room]...)
			b.dropped = true
		} else {
			b.buf = append(b.buf, p...)
		}
	} else if len(p) > 0 {
		b.dropped = true
	}
	return len(p), nil
}
