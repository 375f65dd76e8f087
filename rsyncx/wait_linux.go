package rsyncx

import (
	"syscall"
	"unsafe"
)

// waitExitedNoReap blocks until process pid has exited, without reaping it (waitid with
// WNOWAIT), and reports whether it could. While the exited process is not reaped its PID,
// and so its process group ID, cannot be reused, which makes killing the rest of the group
// safe.
func waitExitedNoReap(pid int) bool {
	const pPID = 1 // P_PID
	var info [128]byte
	for range 1000 { // EINTR retries; bounded for safety
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return true
		case syscall.EINTR:
			continue
		default:
			return false
		}
	}
	return false
}
