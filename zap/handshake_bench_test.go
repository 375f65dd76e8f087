package zap

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkHandshakeAfterKeyAppears measures, for keys written one at a time into a
// watched directory, the time from the write to a real handshake with the key being
// accepted by a curve.Listen server: the reload (debounce included) and one handshake over
// loopback. It reports the median and the 99th percentile.
func BenchmarkHandshakeAfterKeyAppears(b *testing.B) {
	samples := max(b.N, 50)
	dir := b.TempDir()
	a := newAuth(b, Config{})
	configure(b, a, dir)
	s := newServer(b, kindConn, a)
	lat := make([]time.Duration, 0, samples)
	b.ResetTimer()
	for i := range samples {
		cli := newClientKey(b)
		start := time.Now()
		writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), cli.Public)
		waitInSet(b, a, cli.Public, true)
		c, err := s.dial(cli)
		if err != nil {
			b.Fatalf("sample %d: %v", i, err)
		}
		lat = append(lat, time.Since(start))
		c.Close()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "ms-median")
	b.ReportMetric(float64(lat[(len(lat)*99-1)/100])/1e6, "ms-p99")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThousandFilesAppear measures the time from starting to write 1,000 key files
// into a watched directory to all of them being honoured, and then to a real handshake
// with the last one written.
func BenchmarkThousandFilesAppear(b *testing.B) {
	var total time.Duration
	for range b.N {
		dir := b.TempDir()
		a := New(Config{})
		configure(b, a, dir)
		s := newServer(b, kindConn, a)
		start := time.Now()
		last := newClientKey(b)
		for i := range 999 {
			writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), newKey(b))
		}
		writeKey(b, dir, "client_0999.key", last.Public)
		waitFor(b, a, "1,000 keys", func() bool { return a.Stats().Keys == 1000 })
		c, err := s.dial(last)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		c.Close()
		a.Close()
	}
	b.ReportMetric(float64(total)/float64(b.N)/1e6, "ms/1000-files")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHandshake measures whole handshakes (curve.Dial against curve.Listen over
// loopback, both ends in this process) of an allowed client, with the Authenticator
// holding 1,000 keys.
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	for i := range 999 {
		writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), newKey(b))
	}
	cli := newClientKey(b)
	writeKey(b, dir, "client_0999.key", cli.Public)
	a := newAuth(b, Config{})
	configure(b, a, dir)
	s := newServer(b, kindConn, a)
	b.ResetTimer()
	for range b.N {
		c, err := s.dial(cli)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
