package rsyncx

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Loopback is an install target whose "remote host" is a directory of this machine standing
// in for the remote user's home: what the demo uses, and what a machine without ssh or rsync
// can run. Remote-init and remote-tidy are the real remote programs, run as child processes
// (no ssh, no shell) with HOME set to Home, so '$HOME/curvezmq-run/<id>' lands there; the
// contact file's tar stream goes to remote-init over a pipe and its output is read by the
// same parser as over ssh. The file install is [CopyInstall], which applies the rules of the
// rsync command line. Statuses, errors and the install log are those of [Remote].
type Loopback struct {
	// Target is the install target ([ValidTarget]); [LocalTarget] skips every step.
	Target string
	// Home is the directory standing in for the remote home: an absolute path.
	Home string
	// Command is the remote program and any words before its sub-command, as an argv
	// prefix: for example the path of a curvezmq binary.
	Command []string
	// Env is the environment of the remote program; nil means this process's, with HOME
	// set to Home. HOME is always set to Home.
	Env []string
	// BaseDir and Includes are as for [Remote].
	BaseDir  string
	Includes []string
}

func (l *Loopback) remote() *Remote {
	return &Remote{Host: "localhost", Target: l.Target, BaseDir: l.BaseDir, Includes: l.Includes}
}

// argv returns the remote program's command line for sub, and the environment.
func (l *Loopback) argv(sub, workflowID string) ([]string, []string, error) {
	if err := ValidTarget(l.Target); err != nil {
		return nil, nil, err
	}
	dir, err := l.remote().RunDir(workflowID)
	if err != nil {
		return nil, nil, err
	}
	if !filepath.IsAbs(l.Home) {
		return nil, nil, fmt.Errorf("%w: loopback home %q is not absolute", ErrInvalid, l.Home)
	}
	if len(l.Command) == 0 || l.Command[0] == "" {
		return nil, nil, fmt.Errorf("%w: loopback target %s has no command", ErrInvalid, l.Target)
	}
	env := l.Env
	if env == nil {
		env = os.Environ()
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "HOME=") })
	env = append(env, "HOME="+l.Home)
	return append(slices.Clone(l.Command), sub, l.Target, dir), env, nil
}

// Init runs remote-init as a child process with stdin (the [WriteContactTar] stream) on a
// pipe, as [Remote.Init] runs it over ssh, and returns the certificate it printed.
func (l *Loopback) Init(ctx context.Context, workflowID string, stdin io.Reader) (*InitResult, error) {
	argv, env, err := l.argv(remoteInitCmd, workflowID)
	return runInit(ctx, "loopback", l.Target, argv, err, RunOptions{Stdin: stdin, Env: env, Dir: l.Home})
}

// Install copies runDir to the stand-in remote run directory with [CopyInstall] and writes
// the install log as [Remote.Install] does; the command it records is the copy's, with the
// rsync options and rules it applied.
func (l *Loopback) Install(ctx context.Context, runDir, workflowID string, load LoadType) (*InstallResult, error) {
	if IsLocal(l.Target) {
		return &InstallResult{Status: StatusInstallDone, Skipped: true}, nil
	}
	res := &InstallResult{Status: StatusInstallFailed}
	fail := func(err error) (*InstallResult, error) {
		return res, &Error{Op: "file install", Host: "loopback", Target: l.Target, Status: res.Status, Err: err}
	}
	if err := ValidTarget(l.Target); err != nil {
		return fail(err)
	}
	switch load {
	case LoadStart, LoadRestart, LoadReload:
	default:
		return fail(fmt.Errorf("%w: load type %q", ErrInvalid, load))
	}
	if err := ValidWorkflowID(workflowID); err != nil {
		return fail(err)
	}
	base := l.BaseDir
	if base == "" {
		base = DefaultBaseDir
	}
	if err := validBaseDir(base); err != nil {
		return fail(err)
	}
	if !filepath.IsAbs(runDir) || !filepath.IsAbs(l.Home) {
		return fail(fmt.Errorf("%w: run directory %q and home %q must be absolute", ErrInvalid, runDir, l.Home))
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxError("copy", err))
	}
	dest := filepath.Join(l.Home, filepath.FromSlash(base), filepath.FromSlash(workflowID))
	args, err := installArgs(l.Includes)
	if err != nil {
		return fail(err)
	}
	lines, err := CopyInstall(runDir, dest, l.Includes)
	var stdout []byte
	if len(lines) > 0 {
		stdout = []byte(strings.Join(lines, "\n") + "\n")
	}
	argv := append(append([]string{"(in-process copy)", installDelete}, args...), filepath.Clean(runDir)+"/", dest+"/")
	res.Result = &Result{Argv: argv, Code: -1, Stdout: stdout}
	res.LogPath, res.LogErr = WriteInstallLog(runDir, load, l.Target, argv, stdout, nil)
	if err != nil {
		return fail(err)
	}
	res.Result.Code = 0
	res.Status = StatusInstallDone
	return res, nil
}

// Tidy runs remote-tidy as a child process with empty stdin.
func (l *Loopback) Tidy(ctx context.Context, workflowID string) error {
	argv, env, err := l.argv(remoteTidyCmd, workflowID)
	return runTidy(ctx, "loopback", l.Target, argv, err, RunOptions{Env: env, Dir: l.Home})
}
