// Package pyzmq finds, for tests, the Python interpreter that imports Debian's python3-zmq
// (pyzmq on libzmq 4.3): the real libzmq the interop tests talk to.
package pyzmq

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Env names another interpreter to use; a path that does not exist makes the tests skip.
const Env = "CURVEZMQ_INTEROP_PYTHON"

// find checks the interpreter once per test binary.
var find = sync.OnceValues(func() (string, error) {
	py := os.Getenv(Env)
	if py == "" {
		// Debian's Python packages import only in the system interpreter, which need not
		// be the python3 first on PATH.
		py = "/usr/bin/python3"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", "import zmq, zmq.auth.thread").CombinedOutput()
	if err != nil {
		if out = bytes.TrimSpace(out); len(out) > 0 {
			err = fmt.Errorf("%v: %s", err, out[bytes.LastIndexByte(out, '\n')+1:]) // the exception line
		}
		return "", fmt.Errorf("%s cannot import zmq (install Debian's python3-zmq): %v", py, err)
	}
	return py, nil
})

// Find returns the interpreter, or why there is none.
func Find() (string, error) { return find() }

// Python returns the interpreter, or skips the test saying why (what names the test).
func Python(t testing.TB, what string) string {
	t.Helper()
	py, err := find()
	if err != nil {
		t.Skipf("%s skipped: %v", what, err)
	}
	return py
}
