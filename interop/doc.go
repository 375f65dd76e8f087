// Package interop proves that package curve talks to real libzmq: Debian's python3-zmq
// (pyzmq 24.0.1 on libzmq 4.3.4), driven from small Python peers in peers/ and always run
// with /usr/bin/python3, the interpreter that package installs into.
//
// The tests run both directions for every socket pair that matters: a curve.Dial client
// against a pyzmq server that authenticates with pyzmq's ThreadAuthenticator (the way Cylc
// does), and pyzmq clients against a curve.Listen server. They cover request and reply,
// multipart and empty frames, 1 MiB messages, 1000 messages in a row, Close after Send, ZAP
// refusals (400 each way; 500 and the silent 300 from ours), a wrong server key each way, a NULL-mechanism
// peer in each direction, libzmq heartbeats both ways, PUB/SUB with the subscription that
// libzmq sends to a ZMTP 3.0 peer, socket monitor events on the libzmq side and handshake
// events on ours.
//
// The zmq4 matrix (zmq4_*_test.go) does the same for go-zeromq/zmq4 sockets over the
// curve:// transport: REQ/REP, PUB/SUB, DEALER/ROUTER and PUSH/PULL in both directions
// against libzmq servers that authenticate with ThreadAuthenticator.configure_curve, with
// multipart and empty frames, 1 MiB messages, 10,000 in a row, libzmq heartbeats, refused
// keys, wrong server keys, NULL clients, 100 idle half-open connections beside a served
// client, and peers that stop mid-handshake; goleak and an open-descriptor count check that
// nothing is left after sockets close. The zap tests add a pyzmq client whose key is
// written to the authenticator's directory while our server runs (refused before, accepted
// after, with no restart) and pyzmq speaking RFC 27 to zap's wire server.
//
// The libzmq captures in testdata/libzmq at the module root (raw byte streams of a pyzmq
// client and server talking through a recording proxy, with libzmq's fixed fuzzing keys)
// are parsed with internal/zmtp and fed to package handshake and to a curve.Server, which
// pins our parsing to bytes libzmq wrote; those tests need no Python. With python3-nacl,
// libsodium independently opens every box of package handshake's golden transcript.
//
// Run with
//
//	go test ./interop/
//
// The libzmq tests skip, saying why, when /usr/bin/python3 cannot import zmq (install
// python3-zmq and python3-nacl). CURVEZMQ_INTEROP_PYTHON names another interpreter; a
// path that does not exist makes them skip. To regenerate the captures:
//
//	go test ./interop/ -run TestRegenerateCaptures -update
//
// All traffic is on 127.0.0.1; every wait is bounded; each peer process is ended by its
// PID when its test ends.
package interop
