package main

import (
	"regexp"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.run("version")
	line := regexp.MustCompile(`^curvezmq ` + regexp.QuoteMeta(version) + ` go\S+ [a-z0-9]+/[a-z0-9]+( \([0-9a-f]+(, modified)?\))?\n$`)
	if r.code != 0 || !line.MatchString(r.stdout) || r.stderr != "" {
		t.Errorf("%v", r)
	}
	expect(t, h.run("version", "extra"), 1, "takes no arguments", "usage: curvezmq version")
	expect(t, h.run("version", "--bogus"), 1, "flag provided but not defined")
	if r := h.run("version", "--help"); r.code != 0 || r.stdout != versionUsage {
		t.Errorf("%v", r)
	}
}
