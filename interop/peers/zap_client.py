"""A libzmq CURVE REQ client that can start over with a new socket, for the ZAP tests.

Connects a REQ socket with --server-key, --public and --secret (Z85) to --connect and
prints {"event": "ready"}, then obeys commands on stdin, one JSON object per line:

  {"op": "request", "messages": [[HEX, ...], ...], "timeout_ms": T}
      send each message and wait for its reply, as in zmqpeer.py;
      replies {"event": "replies", "messages": [...]} or {"event": "timeout", ...}.
  {"op": "renew"}
      close the socket and connect a new one with the same keys, as a client does
      after a refusal (libzmq does not reconnect a socket that got ERROR);
      replies {"event": "renewed"}.
  {"op": "quit"}
      close everything and exit; so does the end of stdin.

Monitor events of every socket, in turn, are reported as {"event": "monitor", ...}
lines (see zmqpeer.py). Every wait is bounded; traffic is on 127.0.0.1 only.
"""

import argparse
import itertools
import json
import sys
import threading

import zmq

import zmqpeer


class Monitor(zmqpeer.Monitor):
    """zmqpeer.Monitor on an inproc endpoint of its own: pyzmq names the default one after
    the socket's file descriptor, which a new socket may reuse while the old endpoint is
    still bound ("Address already in use")."""

    _ids = itertools.count()

    def __init__(self, sock):
        threading.Thread.__init__(self, daemon=True)
        self.mon = sock.get_monitor_socket(addr="inproc://zap-client-monitor-%d" % next(self._ids))
        self.stopping = threading.Event()


class Client:
    def __init__(self, ctx, args):
        self.ctx = ctx
        self.args = args
        self.sock = None
        self.monitor = None

    def open(self):
        sock = self.ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.sndtimeo = zmqpeer.SEND_TIMEOUT_MS
        sock.curve_serverkey = self.args.server_key.encode()
        sock.curve_publickey = self.args.public.encode()
        sock.curve_secretkey = self.args.secret.encode()
        self.monitor = Monitor(sock)
        self.monitor.start()
        sock.connect(self.args.connect)
        self.sock = sock

    def close(self):
        if self.sock is None:
            return
        self.monitor.stop()
        self.sock.close(linger=0)
        self.sock = None

    def request(self, cmd):
        got = []
        for m in cmd["messages"]:
            self.sock.send_multipart(zmqpeer.from_hex(m))
            if not self.sock.poll(cmd.get("timeout_ms", 5000), zmq.POLLIN):
                break
            got.append(zmqpeer.to_hex(self.sock.recv_multipart()))
        zmqpeer.emit("replies" if len(got) == len(cmd["messages"]) else "timeout", messages=got)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", required=True, help="endpoint to connect to")
    parser.add_argument("--server-key", required=True, help="CURVE server public key (Z85)")
    parser.add_argument("--public", required=True, help="CURVE client public key (Z85)")
    parser.add_argument("--secret", required=True, help="CURVE client secret key (Z85)")
    args = parser.parse_args()

    ctx = zmq.Context()
    client = Client(ctx, args)
    client.open()
    zmqpeer.emit("ready")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        elif op == "request":
            client.request(cmd)
        elif op == "renew":
            client.close()
            client.open()
            zmqpeer.emit("renewed")
        else:
            zmqpeer.emit("error", error="unknown op " + repr(op))
    client.close()
    ctx.term()


if __name__ == "__main__":
    main()
