package rsyncx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/internal/testbed"
	"github.com/curvezmq/curvezmq/rsyncx"
)

func TestParseUname(t *testing.T) {
	for out, want := range map[string]string{
		"Linux x86_64\n":  "linux/amd64",
		"Linux aarch64":   "linux/arm64",
		"Linux ppc64le":   "linux/ppc64le",
		"Darwin arm64\n":  "darwin/arm64",
		"Darwin x86_64":   "darwin/amd64",
		"Linux armv7l":    "linux/arm",
		"Linux i686":      "linux/386",
		"FreeBSD amd64":   "freebsd/amd64",
		"Linux s390x":     "linux/s390x",
		"Linux riscv64\n": "linux/riscv64",
	} {
		goos, goarch, err := rsyncx.ParseUname(out)
		if err != nil || goos+"/"+goarch != want {
			t.Errorf("%q: %s/%s, %v; want %s", out, goos, goarch, err, want)
		}
	}
	for _, bad := range []string{"", "Linux", "Plan9 386", "Linux mips", "Welcome\nLinux x86_64"} {
		if _, _, err := rsyncx.ParseUname(bad); !errors.Is(err, rsyncx.ErrNoBuild) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if got := rsyncx.BuildName("linux", "amd64"); got != "curvezmq-linux-amd64" {
		t.Error(got)
	}
}

// TestInstallBinaryOverSSH puts a stand-in build on a test bed host: the platform comes from
// uname, the file lands in ~/.curvezmq/bin/curvezmq with mode 0755, its version line is
// checked, and a second install sends nothing. A missing build and a wrong version line fail.
func TestInstallBinaryOverSSH(t *testing.T) {
	h := testbed.Shared(t)
	builds := t.TempDir()
	goos, goarch := runtime.GOOS, runtime.GOARCH // the test bed shares this machine's kernel
	build := "#!/bin/sh\n[ \"$1\" = version ] && echo 'curvezmq 9.9.9 go1.99 " + goos + "/" + goarch + "'\n"
	writeFile(t, filepath.Join(builds, rsyncx.BuildName(goos, goarch)), build, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH}
	res, err := r.InstallBinary(ctx, builds)
	if err != nil {
		t.Fatal(err)
	}
	if res.GOOS != goos || res.GOARCH != goarch || res.Version != "curvezmq 9.9.9 go1.99 "+goos+"/"+goarch {
		t.Errorf("%+v", res)
	}
	fi, err := os.Stat(h.LocalPath(rsyncx.BinaryPath))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("remote binary: %v, %v", fi, err)
	}
	if got := remoteFile(t, h, rsyncx.BinaryPath); got != build {
		t.Errorf("remote binary holds %q", got)
	}
	if !strings.Contains(string(res.Copy.Stdout), "send curvezmq") {
		t.Errorf("first copy reported %q", res.Copy.Stdout)
	}
	res, err = r.InstallBinary(ctx, builds)
	if err != nil || len(res.Copy.Stdout) != 0 {
		t.Errorf("second install: %+v, %v (copy said %q)", res, err, res.Copy.Stdout)
	}

	res, err = r.InstallBinary(ctx, t.TempDir())
	var re *rsyncx.Error
	if !errors.Is(err, rsyncx.ErrNoBuild) || !errors.As(err, &re) || re.Status != rsyncx.StatusInitFailed || res.Copy != nil {
		t.Errorf("no build: %+v, %v", res, err)
	}
	liar := t.TempDir()
	writeFile(t, filepath.Join(liar, rsyncx.BuildName(goos, goarch)), "#!/bin/sh\necho 'curvezmq 1 go1 plan9/mips'\n", 0o755)
	if _, err := r.InstallBinary(ctx, liar); err == nil || !strings.Contains(err.Error(), "want curvezmq VERSION") {
		t.Errorf("a build for another platform: %v", err)
	}

	wrong := &rsyncx.Remote{Host: h.Env.Host, Target: "hpc", SSHCommand: faultSSH + " -oUserKnownHostsFile=" + h.Env.WrongKnownHosts}
	if _, err := wrong.InstallBinary(ctx, builds); !errors.As(err, &re) || re.Status != rsyncx.StatusInit255 {
		t.Errorf("wrong host key: %v", err)
	}
}
