// Package bench holds the workloads of "curvezmq bench": message throughput from a sender
// to a receiver and sequential handshakes, over TCP loopback in one process, through
// curve.Conn or through go-zeromq/zmq4 sockets, and the raw secretbox rate of x/crypto for
// reference. Each workload reports in the format of the libzmq comparison program
// (bench/libzmq), so that one script reads both.
package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/zap"
)

// Throughput is the result of a throughput run.
type Throughput struct {
	Impl       string
	Size       int
	Count      int
	MsgsPerSec float64
	MBPerSec   float64 // 10^6 payload bytes per second
}

// Line is the result in the comparison format.
func (r Throughput) Line() string {
	return fmt.Sprintf("impl=%s mode=thr size=%d count=%d msgs_per_s=%d MB_per_s=%.3f",
		r.Impl, r.Size, r.Count, int64(r.MsgsPerSec), r.MBPerSec)
}

// Handshakes is the result of a handshake run.
type Handshakes struct {
	Impl   string
	Count  int
	PerSec float64
}

// Line is the result in the comparison format.
func (r Handshakes) Line() string {
	return fmt.Sprintf("impl=%s mode=hs count=%d handshakes_per_s=%d", r.Impl, r.Count, int64(r.PerSec))
}

// Options select a workload.
type Options struct {
	Via    string // "conn" or "zmq4"
	Mech   string // "curve" or "null" (null only through zmq4)
	Size   int
	Count  int
	ZAP    bool   // handshakes: put a zap authenticator (allow-list directory) in front
	KeyDir string // with ZAP: the directory the authenticator watches
}

func (o Options) impl() string { return "curvezmq-" + o.Via + "-" + o.Mech }

func (o Options) check() error {
	switch {
	case o.Via != "conn" && o.Via != "zmq4":
		return fmt.Errorf("bench: --via must be conn or zmq4, not %q", o.Via)
	case o.Mech != "curve" && o.Mech != "null":
		return fmt.Errorf("bench: --mech must be curve or null, not %q", o.Mech)
	case o.Mech == "null" && o.Via != "zmq4":
		return errors.New("bench: --mech null needs --via zmq4 (curve.Conn is CURVE only)")
	case o.Count < 2:
		return errors.New("bench: --count must be at least 2")
	case o.Size < 0:
		return errors.New("bench: --size must not be negative")
	}
	return nil
}

// timing measures from the first message received to the last, over count-1 messages,
// as the libzmq program does.
func result(o Options, first, last time.Time) Throughput {
	d := last.Sub(first).Seconds()
	if d <= 0 {
		d = 1e-9
	}
	n := float64(o.Count - 1)
	return Throughput{Impl: o.impl(), Size: o.Size, Count: o.Count, MsgsPerSec: n / d, MBPerSec: n * float64(o.Size) / d / 1e6}
}

type keys struct {
	server, client curve.KeyPair
}

func newKeys() (keys, error) {
	s, err := curve.GenerateKeyPair(nil)
	if err != nil {
		return keys{}, err
	}
	c, err := curve.GenerateKeyPair(nil)
	return keys{s, c}, err
}

// RunThroughput sends o.Count messages of o.Size bytes from a sender goroutine to a
// receiver goroutine over TCP loopback.
func RunThroughput(ctx context.Context, o Options) (Throughput, error) {
	if err := o.check(); err != nil {
		return Throughput{}, err
	}
	if o.Via == "conn" {
		return connThroughput(ctx, o)
	}
	return zmq4Throughput(ctx, o)
}

func connThroughput(ctx context.Context, o Options) (Throughput, error) {
	k, err := newKeys()
	if err != nil {
		return Throughput{}, err
	}
	ln, err := curve.Listen("tcp", "127.0.0.1:0", &curve.Config{KeyPair: k.server, SocketType: "PULL"})
	if err != nil {
		return Throughput{}, err
	}
	defer ln.Close()
	sendErr := make(chan error, 1)
	go func() {
		c, err := curve.Dial(ctx, "tcp", ln.Addr().String(), &curve.Config{KeyPair: k.client, ServerKey: k.server.Public, SocketType: "PUSH"})
		if err != nil {
			sendErr <- err
			return
		}
		defer c.Close()
		msg := make([]byte, o.Size)
		for i := 0; i < o.Count; i++ {
			if err := c.Send(msg); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	srv, err := ln.Accept()
	if err != nil {
		return Throughput{}, err
	}
	defer srv.Close()
	buf := make([]byte, 0, o.Size)
	var first time.Time
	for i := 0; i < o.Count; i++ {
		f, _, err := srv.RecvFrame(buf[:0])
		if err != nil {
			return Throughput{}, err
		}
		if len(f) != o.Size {
			return Throughput{}, fmt.Errorf("bench: got %d bytes, want %d", len(f), o.Size)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	last := time.Now()
	if err := <-sendErr; err != nil {
		return Throughput{}, err
	}
	return result(o, first, last), nil
}

func zmq4Endpoints(o Options) (scheme string) {
	if o.Mech == "null" {
		return "tcp://"
	}
	return "curve://"
}

func zmq4Throughput(ctx context.Context, o Options) (Throughput, error) {
	k, err := newKeys()
	if err != nil {
		return Throughput{}, err
	}
	sctx, cctx := ctx, ctx
	if o.Mech == "curve" {
		sctx = curve.WithConfig(ctx, &curve.Config{KeyPair: k.server, Server: true})
		cctx = curve.WithConfig(ctx, &curve.Config{KeyPair: k.client, ServerKey: k.server.Public})
	}
	pull := zmq4.NewPull(sctx)
	defer pull.Close()
	if err := pull.Listen(zmq4Endpoints(o) + "127.0.0.1:0"); err != nil {
		return Throughput{}, err
	}
	push := zmq4.NewPush(cctx)
	defer push.Close()
	if err := push.Dial(zmq4Endpoints(o) + pull.Addr().String()); err != nil {
		return Throughput{}, err
	}
	sendErr := make(chan error, 1)
	go func() {
		msg := zmq4.NewMsg(make([]byte, o.Size))
		for i := 0; i < o.Count; i++ {
			if err := push.Send(msg); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	var first time.Time
	for i := 0; i < o.Count; i++ {
		m, err := pull.Recv()
		if err != nil {
			return Throughput{}, err
		}
		if len(m.Frames) != 1 || len(m.Frames[0]) != o.Size {
			return Throughput{}, fmt.Errorf("bench: bad message %d", i)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	last := time.Now()
	if err := <-sendErr; err != nil {
		return Throughput{}, err
	}
	return result(o, first, last), nil
}

// RunHandshakes makes o.Count sequential connections, each with a handshake, one 4-byte
// round trip and a close.
func RunHandshakes(ctx context.Context, o Options) (Handshakes, error) {
	o.Mech = "curve"
	if err := o.check(); err != nil {
		return Handshakes{}, err
	}
	k, err := newKeys()
	if err != nil {
		return Handshakes{}, err
	}
	scfg := &curve.Config{KeyPair: k.server, SocketType: "REP", Server: true}
	if o.ZAP {
		auth := zap.New(zap.Config{})
		defer auth.Close()
		if err := writeAllowList(o.KeyDir, k.client.Public); err != nil {
			return Handshakes{}, err
		}
		if err := auth.ConfigureCurve("*", o.KeyDir); err != nil {
			return Handshakes{}, err
		}
		scfg.Authorizer, scfg.Events = auth, auth.Observe
	}
	ccfg := &curve.Config{KeyPair: k.client, ServerKey: k.server.Public, SocketType: "REQ"}
	var start time.Time
	if o.Via == "conn" {
		start, err = connHandshakes(ctx, o, scfg, ccfg)
	} else {
		start, err = zmq4Handshakes(ctx, o, scfg, ccfg)
	}
	if err != nil {
		return Handshakes{}, err
	}
	return Handshakes{Impl: o.impl(), Count: o.Count, PerSec: float64(o.Count) / time.Since(start).Seconds()}, nil
}

func connHandshakes(ctx context.Context, o Options, scfg, ccfg *curve.Config) (time.Time, error) {
	ln, err := curve.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		return time.Time{}, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([][]byte, 0, 2)
				for {
					m, err := c.Recv(buf)
					if err != nil {
						return
					}
					if c.Send(m...) != nil {
						return
					}
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	start := time.Now()
	req := [][]byte{nil, []byte("ping")}
	for i := 0; i < o.Count; i++ {
		c, err := curve.Dial(ctx, "tcp", addr, ccfg)
		if err != nil {
			return time.Time{}, err
		}
		if err := c.Send(req...); err != nil {
			c.Close()
			return time.Time{}, err
		}
		m, err := c.Recv(nil)
		c.Close()
		if err != nil {
			return time.Time{}, err
		}
		if len(m) != 2 || string(m[1]) != "ping" {
			return time.Time{}, fmt.Errorf("bench: bad reply %q", m)
		}
	}
	return start, nil
}

func zmq4Handshakes(ctx context.Context, o Options, scfg, ccfg *curve.Config) (time.Time, error) {
	rep := zmq4.NewRep(curve.WithConfig(ctx, scfg))
	defer rep.Close()
	if err := rep.Listen("curve://127.0.0.1:0"); err != nil {
		return time.Time{}, err
	}
	go func() {
		for {
			m, err := rep.Recv()
			if err != nil {
				return
			}
			if rep.Send(m) != nil {
				return
			}
		}
	}()
	addr := "curve://" + rep.Addr().String()
	start := time.Now()
	for i := 0; i < o.Count; i++ {
		req := zmq4.NewReq(curve.WithConfig(ctx, ccfg))
		if err := req.Dial(addr); err != nil {
			req.Close()
			return time.Time{}, err
		}
		if err := req.Send(zmq4.NewMsgString("ping")); err != nil {
			req.Close()
			return time.Time{}, err
		}
		m, err := req.Recv()
		req.Close()
		if err != nil {
			return time.Time{}, err
		}
		if string(m.Frames[0]) != "ping" {
			return time.Time{}, fmt.Errorf("bench: bad reply %q", m.Frames)
		}
	}
	return start, nil
}

// Secretbox measures x/crypto's nacl/secretbox sealing rate for messages of size bytes on
// one core: the crypto floor of a CURVE sender.
func Secretbox(size int, d time.Duration) Throughput {
	var k [32]byte
	var n [24]byte
	msg := make([]byte, size)
	out := make([]byte, 0, size+secretbox.Overhead)
	count := 0
	start := time.Now()
	for time.Since(start) < d {
		for i := 0; i < 64; i++ {
			n[0]++
			out = secretbox.Seal(out[:0], msg, &n, &k)
		}
		count += 64
	}
	el := time.Since(start).Seconds()
	return Throughput{Impl: "xcrypto-secretbox", Size: size, Count: count,
		MsgsPerSec: float64(count) / el, MBPerSec: float64(count) * float64(size) / el / 1e6}
}
