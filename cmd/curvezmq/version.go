package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the project version, printed by "curvezmq version" and written to contact files
// as CYLC_VERSION. Release builds set it with -ldflags "-X main.version=V".
var version = "0.1.0-dev"

const versionUsage = `usage: curvezmq version

Prints one line: "curvezmq", the version, the Go version and os/arch, then the source
revision in parentheses when the binary was built from a version control checkout.
`

func init() {
	register("version", command{
		summary: "print the version, the Go version and os/arch",
		run:     runVersion,
	})
}

func runVersion(e *env, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if code, ok := parseFlags(e, fs, versionUsage, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(e, "version", versionUsage, "takes no arguments")
	}
	fmt.Fprintf(e.stdout, "curvezmq %s %s %s/%s%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, revision())
	return 0
}

// revision returns " (REV)" or " (REV, modified)" from the build's version control stamp,
// or "" when there is none (go test, go run, builds with -buildvcs=false).
func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		return " (" + rev + ", modified)"
	}
	return " (" + rev + ")"
}
