package rsyncx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Error is the failure of a remote step ([Remote.Init], [Remote.Install], [Remote.Tidy]). It
// wraps the cause: [ErrInvalid] when the arguments were refused before anything ran, an
// [*ExitError], a timeout ([ErrTimeout]), a missing program (exec.ErrNotFound) or
// [ErrBadOutput]. It matches [ErrUnreachable] exactly when Status is a 255 status (or, for
// Tidy, ssh exited 255).
type Error struct {
	Op     string // "remote init", "file install" or "remote tidy"
	Host   string
	Target string
	// Status is what the scheduler should record: a FAILED or a 255 status (empty for Tidy).
	Status Status
	// Result is what ran, with its output (nil if nothing ran).
	Result *Result
	Err    error
}

// Error returns "rsyncx: OP of target TARGET on HOST: " and the cause.
func (e *Error) Error() string {
	// The causes carry the package prefix too; say it once.
	cause := strings.ReplaceAll(strings.TrimPrefix(e.Err.Error(), "rsyncx: "), ": rsyncx: ", ": ")
	return fmt.Sprintf("rsyncx: %s of target %s on %s: %s", e.Op, e.Target, e.Host, cause)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// InitResult is the outcome of [Remote.Init].
type InitResult struct {
	// Status is StatusInitDone, StatusInitFailed or StatusInit255; StatusInstallDone when
	// Skipped.
	Status Status
	// Cert is the remote's public certificate text, verbatim, on success. It is untrusted
	// input: the caller parses and validates it before installing it.
	Cert []byte
	// Skipped reports the local install target, for which nothing ran.
	Skipped bool
	// Result is what ran (nil if nothing ran).
	Result *Result
}

// Init runs remote-init for workflowID on the remote host, with stdin (the tar stream from
// [WriteContactTar], or nil) as its standard input, and returns the remote's public
// certificate. Success needs exit status 0 and a key between KEYSTART and KEYEND
// ([ParseRemoteInitOutput]). Exit status 255 gives StatusInit255 and an error matching
// [ErrUnreachable] (try another host); anything else StatusInitFailed. ctx bounds the whole
// run. For the local install target nothing runs and the status is StatusInstallDone.
//
// The result is never nil, and its Status is set on error too.
func (r *Remote) Init(ctx context.Context, workflowID string, stdin io.Reader) (*InitResult, error) {
	argv, err := r.InitArgv(workflowID)
	return runInit(ctx, r.Host, r.Target, argv, err, RunOptions{Stdin: stdin})
}

// runInit runs a remote-init command line, argv (over ssh, or as a local child process),
// unless argvErr says it could not be built, and reads the certificate it printed between
// KEYSTART and KEYEND. For the local install target nothing runs.
func runInit(ctx context.Context, host, target string, argv []string, argvErr error, opts RunOptions) (*InitResult, error) {
	if IsLocal(target) {
		return &InitResult{Status: StatusInstallDone, Skipped: true}, nil
	}
	res := &InitResult{Status: StatusInitFailed}
	fail := func(err error) (*InitResult, error) {
		if errors.Is(err, ErrUnreachable) {
			res.Status = StatusInit255
		}
		return res, &Error{Op: "remote init", Host: host, Target: target, Status: res.Status, Result: res.Result, Err: err}
	}
	if argvErr != nil {
		return fail(argvErr)
	}
	opts.MaxStdout = MaxRemoteInitOutput
	run, err := Run(ctx, argv, &opts)
	res.Result = run
	if err != nil {
		return fail(err)
	}
	if run.StdoutTruncated {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrBadOutput, MaxRemoteInitOutput))
	}
	cert, err := ParseRemoteInitOutput(run.Code, run.Stdout)
	if err != nil {
		return fail(err)
	}
	res.Status, res.Cert = StatusInitDone, cert
	return res, nil
}

// InstallResult is the outcome of [Remote.Install].
type InstallResult struct {
	// Status is StatusInstallDone, StatusInstallFailed or StatusInstall255.
	Status Status
	// Skipped reports the local install target, for which nothing ran.
	Skipped bool
	// Result is the rsync run (nil if nothing ran); Probe the ssh connectivity test that
	// followed a failed rsync, if any.
	Result, Probe *Result
	// LogPath is the install log written ("" if rsync printed nothing); LogErr the failure to
	// write it, which does not change Status.
	LogPath string
	LogErr  error
}

// Install copies the local run directory runDir to the remote run directory of workflowID
// with rsync ([Remote.InstallArgv]): .service/server.key, and the ana, app, bin, etc and lib
// directories and the extra Includes, nothing else. When rsync prints anything, the install
// log is written under runDir ([WriteInstallLog]) with load as its load type.
//
// Exit status 0 gives StatusInstallDone. Like Cylc, when rsync fails with a status other than
// 255 it runs "<ssh command> HOST true": rsync's status after a connection failure is racy
// (12 or 255, say), the probe's is not. Exit status 255 from either gives StatusInstall255 and
// an error matching [ErrUnreachable]; anything else StatusInstallFailed. For the local
// install target nothing runs and the status is StatusInstallDone.
//
// The result is never nil, and its Status is set on error too.
func (r *Remote) Install(ctx context.Context, runDir, workflowID string, load LoadType) (*InstallResult, error) {
	if IsLocal(r.Target) {
		return &InstallResult{Status: StatusInstallDone, Skipped: true}, nil
	}
	res := &InstallResult{Status: StatusInstallFailed}
	fail := func(err error) (*InstallResult, error) {
		if errors.Is(err, ErrUnreachable) {
			res.Status = StatusInstall255
		}
		return res, &Error{Op: "file install", Host: r.Host, Target: r.Target, Status: res.Status, Result: res.Result, Err: err}
	}
	if err := ValidTarget(r.Target); err != nil {
		return fail(err)
	}
	switch load {
	case LoadStart, LoadRestart, LoadReload:
	default:
		return fail(fmt.Errorf("%w: load type %q", ErrInvalid, load))
	}
	argv, err := r.InstallArgv(runDir, workflowID)
	if err != nil {
		return fail(err)
	}
	probe, err := r.probeArgv()
	if err != nil {
		return fail(err)
	}
	run, runErr := Run(ctx, argv, nil)
	res.Result = run
	res.LogPath, res.LogErr = WriteInstallLog(runDir, load, r.Target, argv, run.Stdout, run.Stderr)
	if runErr == nil {
		res.Status = StatusInstallDone
		return res, nil
	}
	var xe *ExitError
	if errors.As(runErr, &xe) && xe.Code != 255 && ctx.Err() == nil {
		p, perr := Run(ctx, probe, &RunOptions{MaxStdout: 4 << 10})
		res.Probe = p
		if errors.Is(perr, ErrUnreachable) {
			runErr = fmt.Errorf("%w (%s exited 255 too): %w", ErrUnreachable, strings.Join(probe, " "), runErr)
		}
	}
	return fail(runErr)
}

// Tidy runs remote-tidy for workflowID on the remote host, with empty standard input: the
// remote removes the contact file and the keys it holds for the workflow. A failure is an
// [*Error], matching [ErrUnreachable] when ssh exited 255. ctx bounds the run (Cylc allows 10
// seconds in all). For the local install target nothing runs.
func (r *Remote) Tidy(ctx context.Context, workflowID string) error {
	argv, err := r.TidyArgv(workflowID)
	return runTidy(ctx, r.Host, r.Target, argv, err, RunOptions{})
}

// runTidy runs a remote-tidy command line (over ssh, or as a local child process), unless
// argvErr says it could not be built. For the local install target nothing runs.
func runTidy(ctx context.Context, host, target string, argv []string, argvErr error, opts RunOptions) error {
	if IsLocal(target) {
		return nil
	}
	if argvErr != nil {
		return &Error{Op: "remote tidy", Host: host, Target: target, Err: argvErr}
	}
	run, err := Run(ctx, argv, &opts)
	if err != nil {
		return &Error{Op: "remote tidy", Host: host, Target: target, Result: run, Err: err}
	}
	return nil
}
