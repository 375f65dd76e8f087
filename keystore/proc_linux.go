package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// maxCmdline bounds the read of /proc/<pid>/cmdline (Linux caps argv at ARG_MAX, 2 MiB by
// default, but a scheduler's command line is short).
const maxCmdline = 1 << 20

// processArgs returns the argv of process pid, split as psutil's Process.cmdline splits
// /proc/<pid>/cmdline: at NULs, or at spaces for a process that rewrote its title; empty
// for a zombie.
func processArgs(pid int) ([]string, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/cmdline"
	data, _, err := readBounded(path, maxCmdline)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d", ErrNoProcess, pid)
	}
	if err != nil {
		return nil, err
	}
	s := string(data)
	if s == "" {
		return nil, nil
	}
	sep := " "
	if strings.HasSuffix(s, "\x00") {
		sep = "\x00"
	}
	s = strings.TrimSuffix(s, sep)
	args := strings.Split(s, sep)
	if sep == "\x00" && len(args) == 1 && strings.Contains(s, " ") {
		args = strings.Split(s, " ")
	}
	return args, nil
}

// ProcessCommand returns the command line of process pid as Cylc records it in
// CYLC_WORKFLOW_COMMAND and compares it for liveness: shlex.join of psutil's cmdline. On
// Linux it reads /proc/<pid>/cmdline (bounded); elsewhere it asks ps(1) for the command,
// which gives the arguments joined by spaces, unquoted. A missing process gives an error
// wrapping [ErrNoProcess]; a zombie gives "".
func ProcessCommand(pid int) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("%w: %d", ErrNoProcess, pid)
	}
	args, err := processArgs(pid)
	if err != nil {
		return "", err
	}
	return shlexJoin(args), nil
}
