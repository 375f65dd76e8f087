package handshake

import (
	"fmt"
	"testing"
)

// Benchmarks of the engine: sealing and opening MESSAGEs in place, and each handshake step.
// Run with: go test ./handshake -run '^$' -bench . -benchmem

func benchSessions(b *testing.B) (*Session, *Session) {
	tr := run(b, newConfigs(b), nil)
	return tr.client, tr.server
}

func BenchmarkSealMessage(b *testing.B) {
	for _, size := range []int{64, 1024, 65536} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			cli, _ := benchSessions(b)
			body := make([]byte, MessageOverhead+size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := cli.SealMessage(body, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenMessage(b *testing.B) {
	for _, size := range []int{64, 1024, 65536} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			cli, srv := benchSessions(b)
			sealed := make([]byte, MessageOverhead+size)
			body := make([]byte, len(sealed))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cli.SealMessage(sealed, 0)
				copy(body, sealed)
				b.StartTimer()
				if _, _, err := srv.OpenMessage(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandshake times each step, with the steps before it outside the timer.
func BenchmarkHandshake(b *testing.B) {
	cfg := newConfigs(b)
	type state struct {
		c                               *Client
		s                               *Server
		hello, welcome, initiate, ready []byte
	}
	upTo := func(step int) *state {
		st := &state{}
		st.c, _ = NewClient(cfg.client)
		st.s, _ = NewServer(cfg.server)
		if step > 0 {
			st.hello, _ = st.c.Hello(nil)
		}
		if step > 1 {
			st.welcome, _ = st.s.ReadHello(nil, st.hello)
		}
		if step > 2 {
			st.initiate, _ = st.c.ReadWelcome(nil, st.welcome)
		}
		if step > 3 {
			st.s.ReadInitiate(st.initiate)
		}
		if step > 4 {
			st.ready, _, _ = st.s.Answer(nil, Result{Status: StatusOK})
		}
		return st
	}
	steps := []struct {
		name string
		run  func(*state) error
	}{
		{"Hello", func(st *state) error { _, err := st.c.Hello(nil); return err }},
		{"ReadHello", func(st *state) error { _, err := st.s.ReadHello(nil, st.hello); return err }},
		{"ReadWelcome", func(st *state) error { _, err := st.c.ReadWelcome(nil, st.welcome); return err }},
		{"ReadInitiate", func(st *state) error { _, err := st.s.ReadInitiate(st.initiate); return err }},
		{"Answer", func(st *state) error { _, _, err := st.s.Answer(nil, Result{Status: StatusOK}); return err }},
		{"ReadReady", func(st *state) error { _, err := st.c.ReadReady(st.ready); return err }},
	}
	for i, step := range steps {
		b.Run(step.name, func(b *testing.B) {
			b.ReportAllocs()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				st := upTo(i)
				b.StartTimer()
				if err := step.run(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
