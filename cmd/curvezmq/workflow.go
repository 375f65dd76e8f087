package main

// What the scheduler and the client share: the run directory, workflow ids, exit codes.

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/curvezmq/curvezmq/rsyncx"
)

// Exit codes of the scheduler and the client.
const (
	exitOK         = 0
	exitFailed     = 1 // scheduler: could not start or clean up; client: an error reply; both: bad usage
	exitTimeout    = 2 // client: no reply in time, or the scheduler cannot be reached
	exitRefused    = 3 // client: the server refused the handshake
	exitNotRunning = 4 // client: not running or files missing; scheduler: another one runs here
)

// runDirParent is where run directories live under $HOME (Cylc's cylc-run).
const runDirParent = "curvezmq-run"

// runDirEnv names the run directory of the workflow a job belongs to (Cylc's
// CYLC_WORKFLOW_RUN_DIR).
const runDirEnv = "CURVEZMQ_RUN_DIR"

// checkID accepts a workflow id by the one rule that remote install targets need too
// (rsyncx.ValidWorkflowID), so that an id that runs a scheduler can also be given targets.
func checkID(id string) error {
	return rsyncx.ValidWorkflowID(id)
}

// defaultRunDir returns $HOME/curvezmq-run/<id>.
func defaultRunDir(home, id string) (string, error) {
	if home == "" || !filepath.IsAbs(home) {
		return "", errors.New("HOME is not set to an absolute path: give --run-dir")
	}
	return filepath.Join(home, runDirParent, filepath.FromSlash(id)), nil
}

// absRunDir makes a run directory given on the command line or in the environment
// absolute and clean.
func absRunDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("the run directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("run directory %q: %w", dir, err)
	}
	return abs, nil
}
