//go:build !linux

package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ProcessCommand returns the command line of process pid as Cylc records it in
// CYLC_WORKFLOW_COMMAND and compares it for liveness: shlex.join of psutil's cmdline. On
// Linux it reads /proc/<pid>/cmdline (bounded); here it asks ps(1) for the command, which
// gives the arguments joined by spaces, unquoted. A missing process gives an error
// wrapping [ErrNoProcess].
func ProcessCommand(pid int) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("%w: %d", ErrNoProcess, pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ps", "-ww", "-o", "command=", "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && out.Len() == 0 {
		return "", fmt.Errorf("%w: %d", ErrNoProcess, pid)
	}
	if err != nil {
		return "", fmt.Errorf("keystore: ps -p %d: %w", pid, err)
	}
	if out.Len() > maxCmdline {
		return "", fmt.Errorf("%w: ps output for pid %d", ErrTooLarge, pid)
	}
	return strings.TrimSpace(out.String()), nil
}

const maxCmdline = 1 << 20
