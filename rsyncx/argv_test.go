package rsyncx

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/curvezmq/curvezmq/keystore"
)

func TestInitArgv(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Remote
		id   string
		want []string
	}{
		{
			"defaults",
			Remote{Host: "hpc1", Target: "hpc"},
			"flow/run1",
			[]string{"ssh", "-oBatchMode=yes", "-oConnectTimeout=10", "hpc1",
				"curvezmq", "remote-init", "hpc", "'$HOME/curvezmq-run/flow/run1'"},
		},
		{
			"login shell and a remote path",
			Remote{Host: "user@hpc1", Target: "hpc", LoginShell: true, RemoteCommand: "/opt/curve zmq/bin/curvezmq"},
			"flow",
			[]string{"ssh", "-oBatchMode=yes", "-oConnectTimeout=10", "user@hpc1",
				"bash", "--login", "-c", `'exec "$0" "$@"'`,
				"'/opt/curve zmq/bin/curvezmq'", "remote-init", "hpc", "'$HOME/curvezmq-run/flow'"},
		},
		{
			// The user's command replaces the default whole (ssh keeps the first value of an
			// option), and is split like a shell would.
			"user ssh command and base dir",
			Remote{Host: "rbt3", Target: "t.1", SSHCommand: `ssh -oBatchMode=yes -oConnectTimeout=2 -o "UserKnownHostsFile /x y"`, BaseDir: "full/runs"},
			"wf",
			[]string{"ssh", "-oBatchMode=yes", "-oConnectTimeout=2", "-o", "UserKnownHostsFile /x y", "rbt3",
				"curvezmq", "remote-init", "t.1", "'$HOME/full/runs/wf'"},
		},
	} {
		got, err := c.r.InitArgv(c.id)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: InitArgv =\n%q, %v\nwant\n%q", c.name, got, err, c.want)
		}
	}
}

func TestTidyArgv(t *testing.T) {
	r := Remote{Host: "hpc1", Target: "hpc"}
	got, err := r.TidyArgv("flow/run1")
	want := []string{"ssh", "-oBatchMode=yes", "-oConnectTimeout=10", "hpc1",
		"curvezmq", "remote-tidy", "hpc", "'$HOME/curvezmq-run/flow/run1'"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("TidyArgv =\n%q, %v\nwant\n%q", got, err, want)
	}
}

func TestInstallArgv(t *testing.T) {
	r := Remote{Host: "hpc1", Target: "hpc"}
	got, err := r.InstallArgv("/home/u/curvezmq-run/flow/run1/", "flow/run1")
	want := []string{
		"rsync",
		"--delete",
		"--rsh=ssh -oBatchMode=yes -oConnectTimeout=10",
		"--include=/.service/",
		"--include=/.service/server.key",
		"-a",
		"--checksum",
		"--out-format=%o %n%L",
		"--no-t",
		"--exclude=/log",
		"--exclude=/share",
		"--exclude=/work",
		"--include=/ana/***",
		"--include=/app/***",
		"--include=/bin/***",
		"--include=/etc/***",
		"--include=/lib/***",
		"--exclude=*",
		"/home/u/curvezmq-run/flow/run1/",
		"hpc1:curvezmq-run/flow/run1/",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("InstallArgv =\n%q, %v\nwant\n%q", got, err, want)
	}

	r = Remote{
		Host: "rbt2", Target: "hpc",
		SSHCommand:   `ssh -oBatchMode=yes -oConnectTimeout=1 -o "UserKnownHostsFile /a b"`,
		RsyncCommand: "/usr/local/bin/rsync --timeout=30",
		BaseDir:      "ro",
		Includes:     []string{"data/", "config.yaml"},
	}
	got, err = r.InstallArgv("/run dir", "wf")
	want = slices.Concat(
		[]string{"/usr/local/bin/rsync", "--timeout=30", "--delete",
			`--rsh=ssh -oBatchMode=yes -oConnectTimeout=1 -o "UserKnownHostsFile /a b"`},
		want[3:17],
		[]string{"--include=/data/***", "--include=/config.yaml", "--exclude=*", "/run dir/", "rbt2:ro/wf/"},
	)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("InstallArgv with options =\n%q, %v\nwant\n%q", got, err, want)
	}
}

// TestInstallRulesUseKeystoreNames ties the literal rules to the keystore's file names.
func TestInstallRulesUseKeystoreNames(t *testing.T) {
	if installOptions[0] != "--include=/"+keystore.ServiceDirName+"/" ||
		installOptions[1] != "--include=/"+keystore.ServiceDirName+"/"+keystore.ServerPublicKeyFile {
		t.Errorf("the .service rules %q do not name keystore's files", installOptions[:2])
	}
}

func TestProbeArgv(t *testing.T) {
	r := Remote{Host: "hpc1", Target: "hpc", SSHCommand: "ssh -oConnectTimeout=1"}
	got, err := r.probeArgv()
	if want := []string{"ssh", "-oConnectTimeout=1", "hpc1", "true"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("probeArgv = %q, %v; want %q", got, err, want)
	}
}

// TestArgvRejects checks that hostile or broken input never yields a command line.
func TestArgvRejects(t *testing.T) {
	good := Remote{Host: "hpc1", Target: "hpc"}
	for _, c := range []struct {
		name string
		mod  func(*Remote)
		id   string
		dir  string
	}{
		{"target with shell syntax", func(r *Remote) { r.Target = "x;rm -rf ~" }, "wf", "/r"},
		{"target option", func(r *Remote) { r.Target = "--help" }, "wf", "/r"},
		{"host option", func(r *Remote) { r.Host = "-oProxyCommand=touch /tmp/x" }, "wf", "/r"},
		{"host with space", func(r *Remote) { r.Host = "a b" }, "wf", "/r"},
		{"empty host", func(r *Remote) { r.Host = "" }, "wf", "/r"},
		{"id escapes", func(*Remote) {}, "../../.ssh", "/r"},
		{"absolute id", func(*Remote) {}, "/etc", "/r"},
		{"id with newline", func(*Remote) {}, "wf\nx", "/r"},
		{"base dir escapes", func(r *Remote) { r.BaseDir = "../x" }, "wf", "/r"},
		{"absolute base dir", func(r *Remote) { r.BaseDir = "/x" }, "wf", "/r"},
		{"unterminated ssh command", func(r *Remote) { r.SSHCommand = "ssh -o 'x" }, "wf", "/r"},
		{"blank ssh command", func(r *Remote) { r.SSHCommand = "  " }, "wf", "/r"},
		{"ssh command with NUL", func(r *Remote) { r.SSHCommand = "ssh\x00" }, "wf", "/r"},
		{"remote command with newline", func(r *Remote) { r.RemoteCommand = "curvezmq\nid" }, "wf", "/r"},
		{"unterminated rsync command", func(r *Remote) { r.RsyncCommand = `rsync "` }, "wf", "/r"},
		{"include with wildcard", func(r *Remote) { r.Includes = []string{"*"} }, "wf", "/r"},
		{"nested include", func(r *Remote) { r.Includes = []string{"a/b"} }, "wf", "/r"},
		{"relative run dir", func(*Remote) {}, "wf", "r"},
		{"root run dir", func(*Remote) {}, "wf", "/"},
	} {
		r := good
		c.mod(&r)
		a1, e1 := r.InitArgv(c.id)
		a2, e2 := r.TidyArgv(c.id)
		a3, e3 := r.InstallArgv(c.dir, c.id)
		// Each case breaks at least one builder; none of them may yield an argv with an error,
		// and all must refuse what concerns them all.
		for i, e := range []error{e1, e2, e3} {
			if e != nil && !errors.Is(e, ErrInvalid) {
				t.Errorf("%s: builder %d: %v is not ErrInvalid", c.name, i, e)
			}
		}
		if e1 == nil && e2 == nil && e3 == nil {
			t.Errorf("%s: accepted: %q", c.name, a1)
		}
		if (e1 == nil) != (a1 != nil) || (e2 == nil) != (a2 != nil) || (e3 == nil) != (a3 != nil) {
			t.Errorf("%s: argv and error disagree", c.name)
		}
		if strings.HasPrefix(c.name, "target") || strings.HasPrefix(c.name, "host") || strings.Contains(c.name, "id") {
			if e1 == nil || e2 == nil {
				t.Errorf("%s: remote-init or remote-tidy accepted it", c.name)
			}
		}
	}
}
