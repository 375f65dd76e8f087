package rsyncx

import "github.com/curvezmq/curvezmq/keystore"

// Status is the state of an install target, with Cylc's exact strings
// (task_remote_mgr.py module constants). A scheduler keeps one per target: a job is submitted
// there only in [StatusInstallDone]; [StatusInit255] and [StatusInstall255] mean "retry, maybe
// on another host"; the FAILED states mean "give up and fail the jobs".
type Status string

// The statuses of remote-init and file install.
const (
	StatusInitInProgress    Status = "REMOTE INIT IN PROGRESS"
	StatusInitDone          Status = "REMOTE INIT DONE"
	StatusInitFailed        Status = "REMOTE INIT FAILED"
	StatusInit255           Status = "REMOTE INIT 255"
	StatusInstallInProgress Status = "REMOTE FILE INSTALL IN PROGRESS"
	StatusInstallDone       Status = "REMOTE FILE INSTALL DONE"
	StatusInstallFailed     Status = "REMOTE FILE INSTALL FAILED"
	StatusInstall255        Status = "REMOTE FILE INSTALL 255"
)

// LocalTarget is the install target of the scheduler's own host. For it there is no
// remote-init, no file install and no remote tidy: its status goes straight to
// [StatusInstallDone], as in Cylc.
const LocalTarget = keystore.LocalhostTarget

// IsLocal reports whether target is the scheduler's own install target, for which every remote
// step is skipped.
func IsLocal(target string) bool { return target == LocalTarget }
