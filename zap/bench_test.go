package zap

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
)

// BenchmarkAuthorize measures a decision against a set of 1,000 keys, from parallel
// goroutines, as handshakes would call it.
func BenchmarkAuthorize(b *testing.B) {
	dir := b.TempDir()
	keys := make([]key.PublicKey, 1000)
	for i := range keys {
		keys[i] = newKey(b)
		writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), keys[i])
	}
	a := newAuth(b, Config{})
	configure(b, a, dir)
	unknown := newKey(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		allowed, denied := request("", keys[500]), request("", unknown)
		n := 0
		for pb.Next() {
			req := allowed
			if n%2 == 1 {
				req = denied
			}
			n++
			a.Authorize(ctx, req)
		}
	})
}

// BenchmarkReloadLatency measures, for a number of keys written one at a time into a
// watched directory, the time from the write to Authorize allowing the key. It reports
// the median and the 99th percentile; the debounce (Config.Debounce, 75 ms) dominates.
func BenchmarkReloadLatency(b *testing.B) {
	samples := max(b.N, 50)
	dir := b.TempDir()
	a := newAuth(b, Config{})
	configure(b, a, dir)
	lat := make([]time.Duration, 0, samples)
	b.ResetTimer()
	for i := range samples {
		k := newKey(b)
		start := time.Now()
		writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), k)
		waitStatus(b, a, k, 200)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "ms-median")
	b.ReportMetric(float64(lat[(len(lat)*99-1)/100])/1e6, "ms-p99")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoad1000Files measures configuring a directory of 1,000 key files: the first
// full scan (every file read and parsed) and setting up the watches.
func BenchmarkLoad1000Files(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		writeKey(b, dir, fmt.Sprintf("client_%04d.key", i), newKey(b))
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		a := New(Config{})
		if err := a.ConfigureCurve("*", dir); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if got := a.Stats().Keys; got != 1000 {
			b.Fatalf("loaded %d keys", got)
		}
		a.Close()
	}
	b.ReportMetric(float64(total)/float64(b.N)/1e6, "ms/load")
}
