// Package fuzz holds the cross-package fuzz targets: whole CurveZMQ handshakes and sessions
// in memory, with the fuzzer choosing which plaintext fields and nonces to mutate behind
// real cryptography (random bytes on the wire would never get past the first MAC). The
// per-parser targets live beside their parsers. Run one with
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzHandshake$' -fuzztime 10s
package fuzz
