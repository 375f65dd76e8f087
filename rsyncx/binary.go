package rsyncx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// BinaryPath is where [Remote.InstallBinary] puts the program on the remote host, relative to
// the remote home; it then serves as the Remote's RemoteCommand.
const BinaryPath = ".curvezmq/bin/curvezmq"

// ErrNoBuild: the remote platform is not one we know, or the builds directory has no build
// for it.
var ErrNoBuild = errors.New("rsyncx: no build of curvezmq for the remote platform")

// BuildName returns the file name of the cross build for goos/goarch in a builds directory,
// as scripts/release names them: curvezmq-<goos>-<goarch>.
func BuildName(goos, goarch string) string { return "curvezmq-" + goos + "-" + goarch }

// ParseUname reads the output of "uname -sm" ("Linux x86_64") as Go's GOOS and GOARCH.
func ParseUname(out string) (goos, goarch string, err error) {
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", "", fmt.Errorf("%w: uname -sm printed %q", ErrNoBuild, summary(out))
	}
	switch f[0] {
	case "Linux":
		goos = "linux"
	case "Darwin":
		goos = "darwin"
	case "FreeBSD":
		goos = "freebsd"
	case "NetBSD":
		goos = "netbsd"
	case "OpenBSD":
		goos = "openbsd"
	default:
		return "", "", fmt.Errorf("%w: unknown system %q", ErrNoBuild, f[0])
	}
	switch m := f[1]; m {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64":
		goarch = "arm64"
	case "ppc64le", "ppc64", "s390x", "riscv64":
		goarch = m
	case "i386", "i486", "i586", "i686", "i86pc":
		goarch = "386"
	case "armv6l", "armv7l", "armv7", "arm":
		goarch = "arm"
	case "loongarch64":
		goarch = "loong64"
	default:
		return "", "", fmt.Errorf("%w: unknown machine %q", ErrNoBuild, m)
	}
	return goos, goarch, nil
}

// BinaryResult is the outcome of [Remote.InstallBinary].
type BinaryResult struct {
	// GOOS and GOARCH are the remote platform, from uname -sm.
	GOOS, GOARCH string
	// Build is the local file that was sent.
	Build string
	// Version is the line "curvezmq version" printed on the remote host.
	Version string
	// Probe, Copy and Check are what ran: the uname probe, the rsync, the version check.
	Probe, Copy, Check *Result
}

// InstallBinary puts the curvezmq build for the remote platform on the remote host, for a
// host that lacks the program: it asks the remote for "uname -sm" (and makes the directory
// of [BinaryPath]), copies buildsDir/curvezmq-<goos>-<goarch> ([BuildName]) with rsync to
// [BinaryPath] with mode 0755 (rsync writes a temporary file and renames it, so a running
// copy is not disturbed; an identical file is not sent again), and runs "BinaryPath version"
// there, which must name the same platform. The caller then sets RemoteCommand to
// BinaryPath.
//
// A failure is an [*Error] (Op "binary install") whose Status is StatusInit255 when ssh or
// rsync exited 255, else StatusInitFailed; a platform without a build matches [ErrNoBuild].
// The result is never nil.
func (r *Remote) InstallBinary(ctx context.Context, buildsDir string) (*BinaryResult, error) {
	res := &BinaryResult{}
	fail := func(run *Result, err error) (*BinaryResult, error) {
		status := StatusInitFailed
		if errors.Is(err, ErrUnreachable) {
			status = StatusInit255
		}
		return res, &Error{Op: "binary install", Host: r.Host, Target: r.Target, Status: status, Result: run, Err: err}
	}
	ssh, err := r.sshWords()
	if err != nil {
		return fail(nil, err)
	}
	if !filepath.IsAbs(buildsDir) {
		return fail(nil, fmt.Errorf("%w: builds directory %q is not absolute", ErrInvalid, buildsDir))
	}
	rsyncCmd := r.RsyncCommand
	if rsyncCmd == "" {
		rsyncCmd = DefaultRsyncCommand
	}
	rsync, err := commandWords("rsync command", rsyncCmd)
	if err != nil {
		return fail(nil, err)
	}

	// One connection for both: the platform, and the directory rsync needs.
	probe := append(append([]string(nil), ssh...), r.Host, "uname -sm && mkdir -p "+Quote(path.Dir(BinaryPath)))
	run, err := Run(ctx, probe, &RunOptions{MaxStdout: 4 << 10})
	res.Probe = run
	if err != nil {
		return fail(run, err)
	}
	if res.GOOS, res.GOARCH, err = ParseUname(string(run.Stdout)); err != nil {
		return fail(run, err)
	}
	res.Build = filepath.Join(buildsDir, BuildName(res.GOOS, res.GOARCH))
	if fi, err := os.Stat(res.Build); err != nil || !fi.Mode().IsRegular() {
		return fail(nil, fmt.Errorf("%w: %s/%s needs %s: %v", ErrNoBuild, res.GOOS, res.GOARCH, res.Build,
			cmpErr(err, "not a regular file")))
	}

	cp := append(append([]string(nil), rsync...), "--rsh="+r.sshCommand(), "--copy-links", "--perms",
		"--chmod=F755", "--checksum", "--out-format=%o %n%L", res.Build, r.Host+":"+BinaryPath)
	run, err = Run(ctx, cp, nil)
	res.Copy = run
	if err != nil {
		return fail(run, err)
	}

	check := append(append([]string(nil), ssh...), r.Host, Quote(BinaryPath), "version")
	run, err = Run(ctx, check, &RunOptions{MaxStdout: 4 << 10})
	res.Check = run
	if err != nil {
		return fail(run, err)
	}
	res.Version = strings.TrimSpace(string(run.Stdout))
	f := strings.Fields(res.Version)
	if len(f) < 4 || f[0] != "curvezmq" || f[3] != res.GOOS+"/"+res.GOARCH {
		return fail(run, fmt.Errorf("rsyncx: %s version printed %q, want curvezmq VERSION GOVERSION %s/%s",
			BinaryPath, summary(res.Version), res.GOOS, res.GOARCH))
	}
	return res, nil
}

func cmpErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}
