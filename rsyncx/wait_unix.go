//go:build unix && !linux

package rsyncx

// waitExitedNoReap reports false: outside Linux, Run does not sweep the process group after
// a normal exit.
func waitExitedNoReap(pid int) bool { return false }
