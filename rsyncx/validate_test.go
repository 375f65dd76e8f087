package rsyncx

import (
	"errors"
	"strings"
	"testing"

	"github.com/curvezmq/curvezmq/keystore"
)

func TestValidTarget(t *testing.T) {
	for _, ok := range []string{"localhost", "hpc", "hpc-2", "a.b_c", "X9", strings.Repeat("a", 200), "..a", "a.."} {
		if err := ValidTarget(ok); err != nil {
			t.Errorf("ValidTarget(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "-x", "a b", "a/b", "a;b", "a$b", "a'b", "é", "a\nb", "a\x00", strings.Repeat("a", 201), "$(id)", "`id`", "~"} {
		if err := ValidTarget(bad); !errors.Is(err, ErrInvalid) || !errors.Is(err, keystore.ErrInvalidTarget) {
			t.Errorf("ValidTarget(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidWorkflowID(t *testing.T) {
	for _, ok := range []string{"flow", "flow/run1", "a/b/c", "my.flow+x_y-z", "flow/..x", "flow@site/run1", strings.Repeat("a", 255)} {
		if err := ValidWorkflowID(ok); err != nil {
			t.Errorf("ValidWorkflowID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "/flow", "flow/", "flow//run", "../flow", "flow/../x", "flow/..", ".", "./flow", "flow/.",
		"-flow", "flow run", "flow\trun", "flow\nrun", "flow;x", "flow$x", "flow'x", "flow*", "flow:x",
		`flow\x`, "flö", strings.Repeat("a", 256),
	} {
		if err := ValidWorkflowID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidWorkflowID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidHost(t *testing.T) {
	for _, ok := range []string{"rbt1", "10.213.1.2", "user@host.example.org", "a-b_c", "rbt1-norsync"} {
		if err := ValidHost(ok); err != nil {
			t.Errorf("ValidHost(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "-oProxyCommand=touch x", "user@-host", "-user@host", "@host", "user@", "a@b@c", "host name",
		"host;id", "host|x", "host&", "$(id)", "`id`", "host:path", "[::1]", "::1", "host\n", "hôst",
		strings.Repeat("h", 256),
	} {
		if err := ValidHost(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidHost(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidInclude(t *testing.T) {
	for _, ok := range []string{"data/", "config.yaml", "x"} {
		if err := ValidInclude(ok); err != nil {
			t.Errorf("ValidInclude(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/", "/abs", "a/b", "a/b/", "..", "../", "*", "a*", "[a]", "-x", "a b"} {
		if err := ValidInclude(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidInclude(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
