package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/curvezmq/curvezmq/internal/bench"
)

// bench: "curvezmq bench throughput|handshake|secretbox [flags]". Narration goes to stderr;
// the last line on stdout is the result, in the format of the libzmq comparison program
// (bench/libzmq/zmqbench.c), so that bench/compare reads both:
//
//	impl=curvezmq-<via>-<mech> mode=thr size=N count=N msgs_per_s=<int> MB_per_s=<decimal>
//	impl=curvezmq-<via>-curve mode=hs count=N handshakes_per_s=<int>
//
// MB is 10^6 payload bytes; throughput is timed from the first message received to the
// last, over count-1 messages.
func init() {
	register("bench", command{
		summary: "measure throughput, handshake rate or the secretbox rate (see bench/compare)",
		run:     runBench,
	})
}

func runBench(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "usage: curvezmq bench throughput|handshake|secretbox [flags]")
		return 1
	}
	mode, args := args[0], args[1:]
	fs := flag.NewFlagSet("bench "+mode, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var o bench.Options
	fs.StringVar(&o.Via, "via", "conn", "conn (curve.Conn) or zmq4 (zmq4 PUSH/PULL, REQ/REP)")
	fs.StringVar(&o.Mech, "mech", "curve", "curve, or null (through zmq4 only)")
	fs.IntVar(&o.Size, "size", 1024, "message size in bytes (throughput, secretbox)")
	fs.IntVar(&o.Count, "count", 100000, "number of messages or handshakes")
	fs.BoolVar(&o.ZAP, "zap", false, "handshakes: authorize through a zap authenticator watching a key directory")
	dur := fs.Duration("duration", 2*time.Second, "secretbox: how long to measure")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "curvezmq: bench %s: unexpected argument %q\n", mode, fs.Arg(0))
		return 1
	}
	ctx := context.Background()
	var line string
	switch mode {
	case "throughput":
		fmt.Fprintf(e.stderr, "bench: %d messages of %d bytes via %s (%s), sender and receiver over TCP loopback\n", o.Count, o.Size, o.Via, o.Mech)
		r, err := bench.RunThroughput(ctx, o)
		if err != nil {
			fmt.Fprintln(e.stderr, "curvezmq:", err)
			return 1
		}
		line = r.Line()
	case "handshake":
		if o.ZAP {
			dir, err := os.MkdirTemp("", "curvezmq-bench-")
			if err != nil {
				fmt.Fprintln(e.stderr, "curvezmq:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			o.KeyDir = dir
		}
		fmt.Fprintf(e.stderr, "bench: %d sequential handshakes via %s (zap %v), each with a 4-byte round trip\n", o.Count, o.Via, o.ZAP)
		r, err := bench.RunHandshakes(ctx, o)
		if err != nil {
			fmt.Fprintln(e.stderr, "curvezmq:", err)
			return 1
		}
		line = r.Line()
	case "secretbox":
		fmt.Fprintf(e.stderr, "bench: x/crypto nacl/secretbox sealing %d-byte messages for %v on one core\n", o.Size, *dur)
		line = bench.Secretbox(o.Size, *dur).Line()
	default:
		fmt.Fprintf(e.stderr, "curvezmq: bench: unknown mode %q (throughput, handshake, secretbox)\n", mode)
		return 1
	}
	fmt.Fprintln(e.stdout, line)
	return 0
}
