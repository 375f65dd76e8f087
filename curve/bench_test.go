package curve

import (
	"fmt"
	"testing"

	"github.com/go-zeromq/zmq4"
)

// Benchmarks of the frame paths: curve.Conn and the zmq4 transport, sender and receiver
// over TCP loopback. Run with: go test ./curve -run '^$' -bench . -benchmem
// (allocations count the whole process: both ends and the writer).

func BenchmarkConnSendRecv(b *testing.B) {
	for _, size := range []int{64, 1024, 65536} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p := newPair(b)
			p.srvCfg.Events, p.cliCfg.Events = nil, nil
			cli, srv := p.mustConnect(b)
			msg := make([]byte, size)
			done := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					if err := cli.Send(msg); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			buf := make([]byte, 0, size)
			for i := 0; i < b.N; i++ {
				if _, _, err := srv.RecvFrame(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkTransportPushPull(b *testing.B) {
	for _, size := range []int{1024, 65536} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			z := newZPair(b)
			z.srvCfg.Authorizer = nil
			pull := z.server(zmq4.NewPull)
			defer pull.Close()
			if err := pull.Listen("curve://127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			push := z.client(zmq4.NewPush)
			defer push.Close()
			if err := push.Dial("curve://" + pull.Addr().String()); err != nil {
				b.Fatal(err)
			}
			msg := zmq4.NewMsg(make([]byte, size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					if push.Send(msg) != nil {
						return
					}
				}
			}()
			for i := 0; i < b.N; i++ {
				if _, err := pull.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
