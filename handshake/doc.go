// Package handshake is an I/O-free CurveZMQ engine (ZMQ RFC 26) that speaks libzmq 4.3's
// wire format: the client and server state machines for HELLO, WELCOME, INITIATE, READY and
// ERROR, and the MESSAGE session that follows. Bytes go in, bytes come out; framing (ZMTP)
// and sockets belong to the caller.
package handshake
