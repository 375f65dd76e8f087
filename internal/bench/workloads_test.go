package bench

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// The workloads run and report in the pinned format (no speed is asserted: figures come
// from benchmarks and bench/compare).
func TestWorkloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	thr := regexp.MustCompile(`^impl=curvezmq-(conn|zmq4)-(curve|null) mode=thr size=\d+ count=\d+ msgs_per_s=\d+ MB_per_s=\d+\.\d{3}$`)
	hs := regexp.MustCompile(`^impl=curvezmq-(conn|zmq4)-curve mode=hs count=\d+ handshakes_per_s=\d+$`)
	for _, o := range []Options{
		{Via: "conn", Mech: "curve", Size: 1024, Count: 500},
		{Via: "conn", Mech: "curve", Size: 0, Count: 10},
		{Via: "zmq4", Mech: "curve", Size: 4096, Count: 200},
		{Via: "zmq4", Mech: "null", Size: 100, Count: 200},
	} {
		r, err := RunThroughput(ctx, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if !thr.MatchString(r.Line()) || r.MsgsPerSec <= 0 {
			t.Fatalf("%+v: %q", o, r.Line())
		}
	}
	for _, o := range []Options{
		{Via: "conn", Count: 20},
		{Via: "zmq4", Count: 10},
		{Via: "conn", Count: 10, ZAP: true, KeyDir: t.TempDir()},
	} {
		r, err := RunHandshakes(ctx, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if !hs.MatchString(r.Line()) || r.PerSec <= 0 {
			t.Fatalf("%+v: %q", o, r.Line())
		}
	}
	for _, bad := range []Options{{Via: "conn", Mech: "null", Count: 2}, {Via: "x", Mech: "curve", Count: 2}, {Via: "conn", Mech: "curve", Count: 1}} {
		if _, err := RunThroughput(ctx, bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if r := Secretbox(1024, 10*time.Millisecond); r.MBPerSec <= 0 || r.Impl != "xcrypto-secretbox" {
		t.Fatal(r)
	}
}
