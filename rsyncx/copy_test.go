package rsyncx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// entry describes one thing in a tree: "d MODE", "f MODE CONTENT" or "l TARGET".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			m[rel] = fmt.Sprintf("d %v", keptMode(fi))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "l " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("f %v %q", keptMode(fi), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// build makes a tree from "path": "content" (a file, 0644), "path/": "" (a directory, 0755),
// "path@": "target" (a symbolic link); a "path|MODE" suffix sets the mode.
func build(t *testing.T, dir string, spec map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(spec)) {
		name, mode := k, fs.FileMode(0)
		if i := strings.IndexByte(k, '|'); i >= 0 {
			var m uint32
			fmt.Sscanf(k[i+1:], "%o", &m)
			name, mode = k[:i], fs.FileMode(m)
		}
		p := filepath.Join(dir, strings.TrimSuffix(strings.TrimSuffix(name, "@"), "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
			if mode == 0 {
				mode = 0o755
			}
		case strings.HasSuffix(name, "@"):
			err = os.Symlink(spec[k], p)
		default:
			err = os.WriteFile(p, []byte(spec[k]), 0o644)
			if mode == 0 {
				mode = 0o644
			}
		}
		if err == nil && mode != 0 {
			err = os.Chmod(p, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// report keeps the lines of a copy report that name what was sent or deleted.
func report(lines []string) []string {
	var out []string
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		if (strings.HasPrefix(l, "send ") || strings.HasPrefix(l, "del. ")) && l != "send ./" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestCopyInstallMatchesRsync runs the in-process copier and real rsync, with the file
// install's own options and rules, on the same trees: they select, send, keep and delete the
// same files, leave the same modes, and report the same lines; a second run sends nothing.
func TestCopyInstallMatchesRsync(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("rsync is not installed; the comparison needs it (apt-get install rsync)")
	}
	includes := []string{"data/", "notes.txt", "data2/"}
	for _, c := range []struct {
		name      string
		src, dest map[string]string
	}{
		{
			name: "a run directory",
			src: map[string]string{
				".service/server.key|600":                      "server public\n",
				".service/server.key_secret|600":               "server secret\n",
				".service/client.key_secret|600":               "client secret\n",
				".service/client_public_keys/client_x.key|600": "x\n",
				".service/contact|600":                         "CYLC_WORKFLOW_PORT=1\n",
				".service/sub/server.key":                      "not the key\n",
				".service/|700":                                "",
				"log/scheduler/log":                            "log\n",
				"share/s":                                      "s\n",
				"work/w":                                       "w\n",
				"app/foo":                                      "new foo\n",
				"app/log/kept":                                 "anchored excludes\n",
				"app/sub/|750":                                 "",
				"app/sub/deep/f|640":                           "deep\n",
				"app/empty/":                                   "",
				"ana/a":                                        "a\n",
				"bin/b|755":                                    "#!/bin/sh\n",
				"etc/e":                                        "e\n",
				"lib/python/l":                                 "l\n",
				"lib/dangling@":                                "/nonexistent",
				"lib/rel@":                                     "../app/foo",
				"data/d":                                       "d\n",
				"data2":                                        "a file, where data2/ wants a directory\n",
				"notes.txt":                                    "notes\n",
				"flow.cylc":                                    "[scheduling]\n",
				"other/o":                                      "o\n",
				"x/app/z":                                      "not top-level\n",
			},
			dest: map[string]string{
				".service/contact|600":           "remote contact\n",
				".service/client.key_secret|600": "remote client secret\n",
				".service/client_hpc.key|600":    "remote public\n",
				".service/olddir/x":              "protected\n",
				"app/old/o":                      "stale\n",
				"app/foo":                        "old foo\n",
				"app/sub/deep/f|600":             "deep\n",
				"ana/gone":                       "stale\n",
				"zzz/d":                          "not ours\n",
				"log/x":                          "excluded\n",
				"data/stale":                     "stale\n",
				"etc/e/":                         "",
				"lib/dangling":                   "a file where a link goes\n",
			},
		},
		{
			name: "entries of the wrong kind",
			src: map[string]string{
				".service/server.key|600": "k\n",
				"app":                     "app is a file here\n",
				"bin@":                    "app",
				"etc/":                    "",
			},
			dest: map[string]string{
				"app/old/o":           "stale\n",
				"bin/b":               "stale\n",
				".service/server.key": "old\n",
				"notes.txt":           "stale, deleted\n",
			},
		},
		{
			name: "no .service at all",
			src:  map[string]string{"app/a": "a\n"},
			dest: map[string]string{
				".service/contact":    "remote contact\n",
				".service/server.key": "old\n",
				"app/b":               "stale\n",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "run")
			build(t, src, c.src)
			viaRsync, viaCopy := filepath.Join(t.TempDir(), "r"), filepath.Join(t.TempDir(), "c")
			build(t, viaRsync, c.dest)
			build(t, viaCopy, c.dest)

			args, err := installArgs(includes)
			if err != nil {
				t.Fatal(err)
			}
			for round := 1; round <= 2; round++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				argv := append(append([]string{rsync, installDelete}, args...), src+"/", viaRsync+"/")
				res, err := Run(ctx, argv, nil)
				cancel()
				if err != nil {
					t.Fatalf("rsync: %v\n%s", err, res.Stderr)
				}
				lines, err := CopyInstall(src, viaCopy, includes)
				if err != nil {
					t.Fatal(err)
				}
				rs, cs := snapshot(t, viaRsync), snapshot(t, viaCopy)
				for _, k := range slices.Sorted(maps.Keys(rs)) {
					if rs[k] != cs[k] {
						t.Errorf("round %d: %s: rsync left %q, the copier %q", round, k, rs[k], cs[k])
					}
				}
				for _, k := range slices.Sorted(maps.Keys(cs)) {
					if _, ok := rs[k]; !ok {
						t.Errorf("round %d: %s: only the copier left %q", round, k, cs[k])
					}
				}
				want := report(strings.Split(string(res.Stdout), "\n"))
				if got := report(lines); !slices.Equal(got, want) {
					t.Errorf("round %d: the copier reported\n%q\nrsync\n%q", round, got, want)
				}
				if round == 2 && len(want) != 0 {
					t.Errorf("round 2 sent %q", want)
				}
			}
			if t.Failed() {
				t.Logf("source:\n%v\nrsync:\n%v", snapshot(t, src), snapshot(t, viaRsync))
			}
		})
	}
}

func TestFilterRules(t *testing.T) {
	for _, c := range []struct {
		rule  string
		path  string
		isDir bool
		want  bool
	}{
		{"--include=/.service/", ".service", true, true},
		{"--include=/.service/", ".service", false, false},
		{"--include=/.service/", "a/.service", true, false},
		{"--exclude=/log", "log", true, true},
		{"--exclude=/log", "app/log", true, false},
		{"--exclude=log", "app/log", false, true},
		{"--include=/app/***", "app", true, true},
		{"--include=/app/***", "app", false, false},
		{"--include=/app/***", "app/x/y", false, true},
		{"--include=/app/***", "apple", true, false},
		{"--exclude=*", "a/b/c", false, true},
		{"--exclude=a/*", "x/a/b", false, true},
		{"--exclude=a/*", "x/a/b/c", false, false},
		{"--exclude=a/*", "b", false, false},
		{"--exclude=a/**", "x/a/b/c", false, true},
		{"--exclude=**/c", "a/b/c", false, true},
		{"--exclude=?.txt", "a.txt", false, true},
		{"--exclude=?.txt", "ab.txt", false, false},
		{"--exclude=/a*c", "abbc", false, true},
		{"--exclude=/a*c", "ab/c", false, false},
	} {
		r, ok, err := parseFilterRule(c.rule)
		if !ok || err != nil {
			t.Fatalf("%s: %v", c.rule, err)
		}
		if got := r.matches(c.path, c.isDir); got != c.want {
			t.Errorf("%s on %q (dir %v) = %v, want %v", c.rule, c.path, c.isDir, got, c.want)
		}
	}
	for _, bad := range []string{"--include=[ab]", `--exclude=a\*`, "--include=", "--exclude=/"} {
		if _, _, err := parseFilterRule(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCopyInstallRefuses(t *testing.T) {
	src := t.TempDir()
	if _, err := CopyInstall(src, filepath.Join(t.TempDir(), "no", "parent"), nil); err == nil {
		t.Error("a missing parent was made")
	}
	if _, err := CopyInstall(src, t.TempDir(), []string{"../x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a hostile include: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := CopyInstall(file, t.TempDir(), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a file as the run directory: %v", err)
	}
}
