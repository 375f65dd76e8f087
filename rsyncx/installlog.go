package rsyncx

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// InstallLogDir is where file-install logs go, relative to the local run directory.
const InstallLogDir = "log/remote-install"

// LoadType says why a file install ran; it is part of the install log's name.
type LoadType string

// The load types of Cylc's install log names.
const (
	LoadStart   LoadType = "start"
	LoadRestart LoadType = "restart"
	LoadReload  LoadType = "reload"
)

// WriteInstallLog records one file install the way Cylc 8 does, in
// <runDir>/log/remote-install/NN-<load>-<target>.log, and returns the file's path. Nothing is
// written (and the path is empty) when stdout is empty.
//
// NN is one more than the leading number of the newest (by modification time) *.log file in
// that directory, or 1; it has at least two digits. The file is appended to, as Cylc does,
// with:
//
//	$ <argv formatted as Cylc's format_cmd(maxlen=80)>
//
//	### STDOUT:
//	<stdout>
//
// followed by "\n\n### STDERR:\n<stderr>" when stderr is not empty.
func WriteInstallLog(runDir string, load LoadType, target string, argv []string, stdout, stderr []byte) (string, error) {
	if len(stdout) == 0 {
		return "", nil
	}
	switch load {
	case LoadStart, LoadRestart, LoadReload:
	default:
		return "", fmt.Errorf("%w: load type %q", ErrInvalid, load)
	}
	if err := ValidTarget(target); err != nil {
		return "", err
	}
	if len(argv) == 0 {
		return "", fmt.Errorf("%w: empty command", ErrInvalid)
	}
	dir := filepath.Join(runDir, filepath.FromSlash(InstallLogDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("rsyncx: install log: %w", err)
	}
	// Installs to several targets finish at once: one number each (Cylc runs its
	// callbacks one at a time).
	installLogMu.Lock()
	defer installLogMu.Unlock()
	n, err := nextLogNumber(dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s.log", n, load, target))

	var b strings.Builder
	b.WriteString("$ ")
	b.WriteString(formatCmd(argv, 80))
	b.WriteString("\n\n### STDOUT:\n")
	b.Write(stdout)
	if len(stderr) > 0 {
		b.WriteString("\n\n### STDERR:\n")
		b.Write(stderr)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("rsyncx: install log: %w", err)
	}
	_, werr := f.WriteString(b.String())
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return "", fmt.Errorf("rsyncx: install log: %w", err)
	}
	return path, nil
}

// nextLogNumber implements Cylc's get_next_log_number over get_sorted_logs_by_time: the
// newest *.log by modification time (ties broken by name, for determinism), its name's part
// before the first "-" read as a decimal number, plus one; 1 when there is no log or the
// newest has no number.
func nextLogNumber(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("rsyncx: install log: %w", err)
	}
	var (
		newest string
		mtime  time.Time
	)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".log") || strings.HasPrefix(name, ".") { // glob's *.log
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, name)) // follows links, as os.path.getmtime does
		if err != nil {
			continue // removed meanwhile, or a dangling link: glob-then-stat would fail too
		}
		if t := fi.ModTime(); newest == "" || t.After(mtime) || t.Equal(mtime) && name > newest {
			newest, mtime = name, t
		}
	}
	if newest == "" {
		return 1, nil
	}
	num, _, _ := strings.Cut(newest, "-")
	n, err := strconv.Atoi(num)
	if err != nil || strings.ContainsAny(num, "+-") || n == math.MaxInt {
		return 1, nil
	}
	return n + 1, nil
}

// formatCmd is Cylc's util.format_cmd: the arguments joined by spaces, unquoted, wrapped
// before an argument that would make the line longer than maxlen (counting the 3 characters
// of the continuation), with " \ " + newline + 4 spaces between lines. Lengths count
// characters, as Python's len does.
func formatCmd(argv []string, maxlen int) string {
	var lines []string
	line := argv[0]
	for _, part := range argv[1:] {
		if line != "" && utf8.RuneCountInString(line)+utf8.RuneCountInString(part)+3 > maxlen {
			lines = append(lines, line)
			line = part
		} else {
			line += " " + part
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, " \\ \n    ")
}

// installLogMu makes choosing a log's number and creating the file one step.
var installLogMu sync.Mutex
