//go:build unix

package rsyncx

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes the command the leader of a new process group, so that it and
// everything it starts (rsync's ssh, a shell's background jobs) can be killed at once.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the process group led by pid. It is only called while pid is not yet
// reaped, so the group ID still belongs to the command.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}
