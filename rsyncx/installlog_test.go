package rsyncx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The expected texts come from Cylc's util.format_cmd, run on the same arguments.
func TestFormatCmd(t *testing.T) {
	r := Remote{Host: "hpc1", Target: "hpc"}
	argv, err := r.InstallArgv("/home/u/curvezmq-run/flow/run1", "flow/run1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv   []string
		maxlen int
		want   string
	}{
		{argv, 80, "rsync --delete --rsh=ssh -oBatchMode=yes -oConnectTimeout=10 \\ \n" +
			"    --include=/.service/ --include=/.service/server.key -a --checksum \\ \n" +
			"    --out-format=%o %n%L --no-t --exclude=/log --exclude=/share --exclude=/work \\ \n" +
			"    --include=/ana/*** --include=/app/*** --include=/bin/*** --include=/etc/*** \\ \n" +
			"    --include=/lib/*** --exclude=* /home/u/curvezmq-run/flow/run1/ \\ \n" +
			"    hpc1:curvezmq-run/flow/run1/"},
		{[]string{"echo", "hello", "world"}, 60, "echo hello world"},
		{[]string{"echo", "hello", "world"}, 5, "echo \\ \n    hello \\ \n    world"},
		{[]string{"", "a", "b"}, 80, " a b"},
		{[]string{strings.Repeat("x", 100), "a"}, 80, strings.Repeat("x", 100) + " \\ \n    a"},
		{[]string{strings.Repeat("é", 70), "abcdefg"}, 80, strings.Repeat("é", 70) + " abcdefg"},
	} {
		if got := formatCmd(c.argv, c.maxlen); got != c.want {
			t.Errorf("formatCmd(%q, %d) =\n%q\nwant\n%q", c.argv, c.maxlen, got, c.want)
		}
	}
}

func TestWriteInstallLog(t *testing.T) {
	runDir := t.TempDir()
	argv := []string{"rsync", "--delete", "x/", "h:y/"}
	stdout := []byte("send .service/server.key\nsend app/foo\n")

	p, err := WriteInstallLog(runDir, LoadStart, "hpc", argv, stdout, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(runDir, "log", "remote-install", "01-start-hpc.log"); p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	got, _ := os.ReadFile(p)
	want := "$ rsync --delete x/ h:y/\n\n### STDOUT:\nsend .service/server.key\nsend app/foo\n"
	if string(got) != want {
		t.Errorf("log =\n%q\nwant\n%q", got, want)
	}

	p, err = WriteInstallLog(runDir, LoadReload, "hpc-2", argv, []byte("send a\n"), []byte("warning: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "02-reload-hpc-2.log" {
		t.Errorf("second log named %s, want 02-reload-hpc-2.log", filepath.Base(p))
	}
	got, _ = os.ReadFile(p)
	want = "$ rsync --delete x/ h:y/\n\n### STDOUT:\nsend a\n\n\n### STDERR:\nwarning: x\n"
	if string(got) != want {
		t.Errorf("log with stderr =\n%q\nwant\n%q", got, want)
	}

	// Nothing on stdout, no log.
	if p, err := WriteInstallLog(runDir, LoadStart, "hpc", argv, nil, []byte("error")); p != "" || err != nil {
		t.Errorf("empty stdout: %q, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "log", "remote-install", "03-start-hpc.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a log was written for empty stdout")
	}

	for _, bad := range []struct {
		load   LoadType
		target string
	}{{"boot", "hpc"}, {"", "hpc"}, {LoadStart, "../x"}, {LoadStart, ""}} {
		if _, err := WriteInstallLog(runDir, bad.load, bad.target, argv, stdout, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("load %q target %q: %v, want ErrInvalid", bad.load, bad.target, err)
		}
	}
}

func TestInstallLogNumbering(t *testing.T) {
	base := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		files map[string]int // name: mtime offset in seconds
		want  string
	}{
		{"none", nil, "01-start-t.log"},
		{"01, 02", map[string]int{"01-start-a.log": 1, "02-restart-b.log": 2}, "03-start-t.log"},
		{"newest by time, not by name", map[string]int{"01-start-a.log": 5, "02-start-a.log": 2}, "02-start-t.log"},
		{"same time: the greater name", map[string]int{"04-start-a.log": 2, "07-start-a.log": 2}, "08-start-t.log"},
		{"newest has no number", map[string]int{"05-start-a.log": 1, "notes.log": 3}, "01-start-t.log"},
		{"only .log files count", map[string]int{"05-start-a.log": 1, "09-start-a.txt": 3, "11-start-a": 4}, "06-start-t.log"},
		{"hidden files do not count", map[string]int{"05-start-a.log": 1, ".09-start-a.log": 3}, "06-start-t.log"},
		{"past 99", map[string]int{"99-start-a.log": 1}, "100-start-t.log"},
		{"not zero padded (8.0.0)", map[string]int{"01-start-a.log": 1, "2-start-a.log": 2}, "03-start-t.log"},
		{"signed number", map[string]int{"+3-start-a.log": 1}, "01-start-t.log"},
	} {
		runDir := t.TempDir()
		dir := filepath.Join(runDir, "log", "remote-install")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, off := range c.files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			mt := base.Add(time.Duration(off) * time.Second)
			if err := os.Chtimes(p, mt, mt); err != nil {
				t.Fatal(err)
			}
		}
		p, err := WriteInstallLog(runDir, LoadStart, "t", []string{"rsync"}, []byte("x"), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := filepath.Base(p); got != c.want {
			t.Errorf("%s: wrote %s, want %s", c.name, got, c.want)
		}
	}
}
