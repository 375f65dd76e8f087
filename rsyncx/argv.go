package rsyncx

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Defaults of a [Remote].
const (
	// DefaultSSHCommand is Cylc's default "ssh command". A Remote's SSHCommand replaces it
	// whole: ssh keeps the first value it sees of an option, so options appended after these
	// would be ignored.
	DefaultSSHCommand = "ssh -oBatchMode=yes -oConnectTimeout=10"
	// DefaultRsyncCommand is Cylc's default "rsync command".
	DefaultRsyncCommand = "rsync"
	// DefaultRemoteCommand is the program run on the remote host.
	DefaultRemoteCommand = "curvezmq"
	// DefaultBaseDir is where run directories live on the remote host, relative to its home
	// (Cylc's cylc-run).
	DefaultBaseDir = "curvezmq-run"
)

// The remote sub-commands.
const (
	remoteInitCmd = "remote-init"
	remoteTidyCmd = "remote-tidy"
)

// loginShell runs the remote command under a login shell, as Cylc's "use login shell" does;
// the command follows as arguments, so it needs no second level of quoting.
var loginShell = []string{"bash", "--login", "-c", `exec "$0" "$@"`}

// Remote is one install target reached through one host: how to reach it and what to run
// there. The zero values of the optional fields mean the defaults above.
type Remote struct {
	// Host is the ssh destination ([ValidHost]).
	Host string
	// Target is the install target ([ValidTarget]); [LocalTarget] skips every remote step.
	Target string
	// SSHCommand is the ssh command line, split like a shell would ([SplitCommand]); it
	// replaces DefaultSSHCommand whole. rsync gets it verbatim in --rsh.
	SSHCommand string
	// RsyncCommand is the rsync command line, split the same way.
	RsyncCommand string
	// RemoteCommand is the program to run on the remote host, one word: a name looked up in
	// the remote PATH, or a path (relative paths start from the remote home). It is quoted
	// for the remote shell and never expanded.
	RemoteCommand string
	// LoginShell runs the remote command through bash --login, so that the remote user's
	// profile sets PATH.
	LoginShell bool
	// BaseDir is the remote directory holding run directories, relative to the remote home.
	BaseDir string
	// Includes are extra file-install items (Cylc's [scheduler]install): top-level names in
	// the run directory, directories ending in "/" ([ValidInclude]).
	Includes []string
}

func (r *Remote) sshCommand() string {
	if r.SSHCommand != "" {
		return r.SSHCommand
	}
	return DefaultSSHCommand
}

func (r *Remote) baseDir() string {
	if r.BaseDir != "" {
		return r.BaseDir
	}
	return DefaultBaseDir
}

// sshWords checks the host and the ssh command and returns the ssh command's words.
func (r *Remote) sshWords() ([]string, error) {
	if err := ValidHost(r.Host); err != nil {
		return nil, err
	}
	return commandWords("ssh command", r.sshCommand())
}

func commandWords(what, s string) ([]string, error) {
	if err := validWord(what, s); err != nil {
		return nil, err
	}
	w, err := SplitCommand(s)
	if err != nil {
		return nil, err
	}
	if len(w) == 0 || w[0] == "" {
		return nil, fmt.Errorf("%w: %s %q names no program", ErrInvalid, what, s)
	}
	return w, nil
}

// RunDir returns the remote run directory of workflowID as remote-init and remote-tidy get it:
// "$HOME/<base dir>/<id>", with $HOME unexpanded (the remote program expands it).
func (r *Remote) RunDir(workflowID string) (string, error) {
	if err := ValidWorkflowID(workflowID); err != nil {
		return "", err
	}
	if err := validBaseDir(r.baseDir()); err != nil {
		return "", err
	}
	return "$HOME/" + r.baseDir() + "/" + workflowID, nil
}

// InitArgv returns the command line of remote-init for workflowID:
//
//	ssh -oBatchMode=yes -oConnectTimeout=10 HOST curvezmq remote-init TARGET '$HOME/curvezmq-run/ID'
//
// ssh joins the words after the host with spaces and hands the result to the remote user's
// shell, so each of them is quoted ([Quote]); the single quotes keep $HOME from both shells.
// With LoginShell, bash --login -c 'exec "$0" "$@"' comes before the program.
func (r *Remote) InitArgv(workflowID string) ([]string, error) {
	return r.remoteArgv(remoteInitCmd, workflowID)
}

// TidyArgv returns the command line of remote-tidy for workflowID, built as [Remote.InitArgv]
// builds remote-init's.
func (r *Remote) TidyArgv(workflowID string) ([]string, error) {
	return r.remoteArgv(remoteTidyCmd, workflowID)
}

func (r *Remote) remoteArgv(sub, workflowID string) ([]string, error) {
	argv, err := r.sshWords()
	if err != nil {
		return nil, err
	}
	if err := ValidTarget(r.Target); err != nil {
		return nil, err
	}
	dir, err := r.RunDir(workflowID)
	if err != nil {
		return nil, err
	}
	prog := r.RemoteCommand
	if prog == "" {
		prog = DefaultRemoteCommand
	}
	if err := validWord("remote command", prog); err != nil {
		return nil, err
	}
	if strings.ContainsFunc(prog, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return nil, fmt.Errorf("%w: remote command %q contains control characters", ErrInvalid, prog)
	}
	if strings.HasPrefix(prog, "-") {
		// ssh reads options after the destination too: it would take this for one.
		return nil, fmt.Errorf("%w: remote command %q starts with '-'", ErrInvalid, prog)
	}
	var words []string
	if r.LoginShell {
		words = append(words, loginShell...)
	}
	words = append(words, prog, sub, r.Target, dir)
	argv = append(argv, r.Host)
	for _, w := range words {
		argv = append(argv, Quote(w))
	}
	return argv, nil
}

// probeArgv returns the connectivity test Cylc runs when rsync fails with a status other
// than 255: "<ssh command> HOST true"; its exit status 255 means the host is unreachable.
func (r *Remote) probeArgv() ([]string, error) {
	argv, err := r.sshWords()
	if err != nil {
		return nil, err
	}
	return append(argv, r.Host, "true"), nil
}

// The fixed parts of the file-install command line, in Cylc's order (which matters: rsync
// applies the first rule that matches). Only .service/server.key leaves .service.
var (
	installOptions = []string{
		"--include=/.service/",
		"--include=/.service/server.key",
		"-a",
		"--checksum",
		"--out-format=%o %n%L",
		"--no-t",
		"--exclude=/log",
		"--exclude=/share",
		"--exclude=/work",
		"--include=/ana/***",
		"--include=/app/***",
		"--include=/bin/***",
		"--include=/etc/***",
		"--include=/lib/***",
	}
	installExcludeRest = "--exclude=*"
	// installDelete comes first: files the run directory no longer has are deleted on the
	// remote, except those the rules exclude (the remote's own keys and contact file).
	installDelete = "--delete"
)

// InstallArgv returns the file-install command line (Cylc's construct_rsync_over_ssh_cmd)
// that copies runDir, a local absolute path, to the remote run directory of workflowID:
//
//	rsync --delete '--rsh=ssh -oBatchMode=yes -oConnectTimeout=10'
//	  --include=/.service/ --include=/.service/server.key -a --checksum
//	  '--out-format=%o %n%L' --no-t --exclude=/log --exclude=/share --exclude=/work
//	  --include=/ana/*** --include=/app/*** --include=/bin/*** --include=/etc/***
//	  --include=/lib/*** [--include=/ITEM or /DIR/*** ...] --exclude=* RUNDIR/ HOST:curvezmq-run/ID/
//
// The destination is relative to the remote home. No shell is involved locally; rsync splits
// --rsh itself. The remote run directory's parent must exist (remote-init makes it).
func (r *Remote) InstallArgv(runDir, workflowID string) ([]string, error) {
	if err := ValidHost(r.Host); err != nil {
		return nil, err
	}
	ssh := r.sshCommand()
	if _, err := commandWords("ssh command", ssh); err != nil {
		return nil, err
	}
	rsyncCmd := r.RsyncCommand
	if rsyncCmd == "" {
		rsyncCmd = DefaultRsyncCommand
	}
	argv, err := commandWords("rsync command", rsyncCmd)
	if err != nil {
		return nil, err
	}
	if err := ValidWorkflowID(workflowID); err != nil {
		return nil, err
	}
	if err := validBaseDir(r.baseDir()); err != nil {
		return nil, err
	}
	if err := validWord("run directory", runDir); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(runDir) {
		return nil, fmt.Errorf("%w: run directory %q is not absolute", ErrInvalid, runDir)
	}
	src := filepath.Clean(runDir)
	if src == "/" {
		return nil, fmt.Errorf("%w: run directory is /", ErrInvalid)
	}
	rules, err := installArgs(r.Includes)
	if err != nil {
		return nil, err
	}
	argv = append(argv, installDelete, "--rsh="+ssh)
	argv = append(argv, rules...)
	argv = append(argv, src+"/", r.Host+":"+r.baseDir()+"/"+workflowID+"/")
	return argv, nil
}

// installArgs returns the words of the file-install command line that say what is copied
// and how, after --delete and --rsh: the options and filter rules in Cylc's order, the extra
// items, and the final --exclude=*. Both InstallArgv and the in-process copier
// ([CopyInstall]) read them, so the two cannot select different files.
func installArgs(includes []string) ([]string, error) {
	args := slices.Clone(installOptions)
	for _, item := range includes {
		if err := ValidInclude(item); err != nil {
			return nil, err
		}
		if strings.HasSuffix(item, "/") {
			args = append(args, "--include=/"+item+"***")
		} else {
			args = append(args, "--include=/"+item)
		}
	}
	return append(args, installExcludeRest), nil
}
