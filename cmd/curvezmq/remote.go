package main

// The remote side of install targets: what the scheduler runs over ssh.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

// Exit codes of remote-init and remote-tidy (Cylc's, from 8.6.5).
const (
	exitRemoteOK      = 0
	exitRemoteBadArgs = 1 // bad arguments or input
	exitRemoteGuard   = 2 // a guard refused (remote-init)
	exitRemoteFailed  = 3 // writing keys or the contact file, or removing them, failed
)

func init() {
	register("remote-init", command{
		summary: "on an install target: make its client keys, print the public one (run over ssh)",
		run:     runRemoteInit,
	})
	register("remote-tidy", command{
		summary: "on an install target: remove a workflow's contact file and keys (run over ssh)",
		run:     runRemoteTidy,
	})
}

const remoteInitUsage = `usage: curvezmq remote-init TARGET RUN_DIR

Run by the scheduler over ssh on a host of install target TARGET. RUN_DIR is the workflow's
run directory on this host, usually '$HOME/curvezmq-run/ID': $HOME is expanded here. Makes
the target's client key pair in RUN_DIR/.service, installs the contact file sent as a tar
stream on standard input, and prints the public certificate between KEYSTART and KEYEND,
then REMOTE INIT DONE. On failure it prints REMOTE INIT FAILED and the reason, and exits
1 (bad arguments or input), 2 (a guard refused: a shared filesystem or a misconfigured
install target) or 3 (the keys or the contact file could not be written; keys it made are
removed again).
`

const remoteTidyUsage = `usage: curvezmq remote-tidy TARGET RUN_DIR

Run by the scheduler over ssh at shutdown on a host of install target TARGET: removes the
contact file and the keys of RUN_DIR/.service ($HOME is expanded here). Exits 1 for bad
arguments, 3 when something could not be removed, or when RUN_DIR/.service is not a
directory (a symlink is not followed) or is a scheduler's own (it holds
client_public_keys): then nothing is removed.
`

// remoteArgs parses TARGET RUN_DIR and returns the target and the absolute run directory,
// or the exit code after reporting the problem.
func remoteArgs(e *env, name, usage string, args []string, failed func(string)) (target, runDir string, code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, usage)
			return "", "", exitRemoteOK, false
		}
		failed(err.Error())
		fmt.Fprint(e.stderr, usage)
		return "", "", exitRemoteBadArgs, false
	}
	if fs.NArg() != 2 {
		failed(fmt.Sprintf("want TARGET RUN_DIR, got %d arguments", fs.NArg()))
		fmt.Fprint(e.stderr, usage)
		return "", "", exitRemoteBadArgs, false
	}
	target = fs.Arg(0)
	if err := keystore.ValidTarget(target); err != nil {
		failed(err.Error())
		return "", "", exitRemoteBadArgs, false
	}
	runDir, err := expandRunDir(fs.Arg(1), e.getenv("HOME"))
	if err != nil {
		failed(err.Error())
		return "", "", exitRemoteBadArgs, false
	}
	return target, runDir, 0, true
}

// expandRunDir expands $HOME and ${HOME} in dir (the scheduler quotes them so that this
// program, not a shell, expands them) and requires an absolute path with no other variable
// ($HOMEDIR is another variable, as it is to a shell).
func expandRunDir(dir, home string) (string, error) {
	if strings.Contains(dir, "$") {
		if home == "" || !filepath.IsAbs(home) {
			return "", fmt.Errorf("run directory %q: HOME is not set to an absolute path", dir)
		}
		var b strings.Builder
		for rest := dir; rest != ""; {
			i := strings.IndexByte(rest, '$')
			if i < 0 {
				b.WriteString(rest)
				break
			}
			b.WriteString(rest[:i])
			rest = rest[i:]
			switch {
			case strings.HasPrefix(rest, "${HOME}"):
				rest = rest[len("${HOME}"):]
			case strings.HasPrefix(rest, "$HOME") && (len(rest) == len("$HOME") || !isNameChar(rest[len("$HOME")])):
				rest = rest[len("$HOME"):]
			default:
				return "", fmt.Errorf("run directory %q contains an invalid environment variable", dir)
			}
			b.WriteString(home)
		}
		dir = b.String()
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("run directory %q is not absolute", dir)
	}
	return filepath.Clean(dir), nil
}

// isNameChar reports whether c can continue a shell variable name.
func isNameChar(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func runRemoteInit(e *env, args []string) int {
	// Cylc's protocol: the scheduler reads stdout; "REMOTE INIT FAILED" and the reason go
	// there. The reason also goes to stderr, which the scheduler quotes in its error.
	failed := func(msg string) {
		fmt.Fprintf(e.stdout, "%s\n%s\n", rsyncx.StatusInitFailed, msg)
		fmt.Fprintf(e.stderr, "curvezmq: remote-init: %s\n", msg)
	}
	target, runDir, code, ok := remoteArgs(e, "remote-init", remoteInitUsage, args, failed)
	if !ok {
		return code
	}
	// Read and check the contact file first: hostile input changes nothing.
	contact, err := rsyncx.ReadContactTar(e.stdin)
	if err != nil {
		failed(err.Error())
		return exitRemoteBadArgs
	}
	cert, err := keystore.CreateClientKeys(keystore.ServiceDir(runDir), target, nil)
	if err != nil {
		var ge *keystore.GuardError
		if errors.As(err, &ge) {
			failed(ge.Msg)
			return exitRemoteGuard
		}
		failed(err.Error())
		return exitRemoteFailed
	}
	if contact != nil {
		if err := rsyncx.InstallContact(runDir, contact); err != nil {
			// The scheduler tidies only targets whose remote-init succeeded: take back the
			// key pair just made, so that a failure leaves no secret key here.
			msg := err.Error()
			if rerr := keystore.RemoveClientKeys(keystore.ServiceDir(runDir), target, false); rerr != nil {
				msg += "; and the new client keys could not be removed: " + rerr.Error()
			}
			failed(msg)
			return exitRemoteFailed
		}
	}
	fmt.Fprintf(e.stdout, "%s%s%s%s\n", rsyncx.KeyStart, cert, rsyncx.KeyEnd, rsyncx.StatusInitDone)
	return exitRemoteOK
}

func runRemoteTidy(e *env, args []string) int {
	failed := func(msg string) { fmt.Fprintf(e.stderr, "curvezmq: remote-tidy: %s\n", msg) }
	target, runDir, code, ok := remoteArgs(e, "remote-tidy", remoteTidyUsage, args, failed)
	if !ok {
		return code
	}
	if err := keystore.RemoteTidy(keystore.ServiceDir(runDir), target); err != nil {
		failed(err.Error())
		return exitRemoteFailed
	}
	return exitRemoteOK
}
