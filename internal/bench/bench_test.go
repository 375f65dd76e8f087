package bench

import (
	"context"
	"testing"
)

func BenchmarkHandshakeConn(b *testing.B) {
	r, err := RunHandshakes(context.Background(), Options{Via: "conn", Mech: "curve", Count: max(b.N, 2)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.PerSec, "handshakes/s")
}

func BenchmarkThroughputConn1K(b *testing.B) {
	r, err := RunThroughput(context.Background(), Options{Via: "conn", Mech: "curve", Size: 1024, Count: max(b.N, 2)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.MsgsPerSec, "msgs/s")
}

func BenchmarkThroughputConn64K(b *testing.B) {
	r, err := RunThroughput(context.Background(), Options{Via: "conn", Mech: "curve", Size: 65536, Count: max(b.N, 2)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.MBPerSec, "MB/s")
}
