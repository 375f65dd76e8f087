"""Shared helpers for the libzmq peers of the interop tests (server.py, client.py).

A peer sets up one pyzmq socket from its command line, reports on stdout, one JSON
object per line, and then obeys commands that the Go test writes to its stdin, one
JSON object per line:

  {"op": "send", "messages": [[HEX, ...], ...], "after_ms": N}
      wait N ms (0 if absent), then send each message (a list of hex frames);
      replies {"event": "sent", "count": K}.
  {"op": "recv", "count": N, "timeout_ms": T}
      receive N messages, waiting at most T ms for each;
      replies {"event": "recv", "messages": [...]}, or {"event": "timeout", "messages":
      [what arrived]} when one does not come.
  {"op": "request", "messages": [...], "timeout_ms": T}
      for a REQ socket: send each message and wait for its reply;
      replies {"event": "replies", "messages": [...]} (or "timeout" as for recv).
  {"op": "echo", "count": N, "timeout_ms": T}
      receive N messages and send each straight back (a REP socket answers the
      request, a ROUTER socket routes it back to its sender);
      replies {"event": "echoed", "count": N} (or "timeout" with "count").
  {"op": "quit"}
      close everything and exit; so does the end of stdin.

Unprompted lines: {"event": "ready", "port": P} once the socket is bound (servers) or
connecting (clients), and {"event": "monitor", "name": NAME, "value": V} for each event of
the socket's monitor (zmq_socket_monitor), e.g. HANDSHAKE_SUCCEEDED, HANDSHAKE_FAILED_AUTH
with the ZAP status, HANDSHAKE_FAILED_PROTOCOL with a ZMQ_PROTOCOL_ERROR_* code.

Every wait is bounded; traffic is on 127.0.0.1 only.
"""

import binascii
import json
import sys
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

# How long a send may block before the peer reports an error instead of hanging.
SEND_TIMEOUT_MS = 5000

_emit_lock = threading.Lock()

# Monitor event numbers to names (HANDSHAKE_SUCCEEDED, DISCONNECTED, ...).
EVENT_NAMES = {int(e): e.name for e in zmq.Event}

SOCKET_TYPES = {
    name: getattr(zmq, name)
    for name in ("REQ", "REP", "DEALER", "ROUTER", "PUB", "SUB", "PUSH", "PULL", "PAIR")
}


def emit(event, **fields):
    """Writes one JSON line to stdout (thread-safe) and flushes it."""
    fields["event"] = event
    line = json.dumps(fields, separators=(",", ":"))
    with _emit_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def to_hex(parts):
    return [binascii.hexlify(p).decode("ascii") for p in parts]


def from_hex(parts):
    return [binascii.unhexlify(p) for p in parts]


def add_socket_args(parser):
    """The options both kinds of peer share."""
    parser.add_argument("--type", required=True, choices=sorted(SOCKET_TYPES),
                        help="socket type")
    parser.add_argument("--identity", default=None,
                        help="routing id (ZMQ_ROUTING_ID), sent as the Identity property")
    parser.add_argument("--heartbeat-ivl", type=int, default=0,
                        help="ZMQ_HEARTBEAT_IVL in ms (0: no heartbeats)")
    parser.add_argument("--heartbeat-timeout", type=int, default=0,
                        help="ZMQ_HEARTBEAT_TIMEOUT in ms")
    parser.add_argument("--heartbeat-ttl", type=int, default=0,
                        help="ZMQ_HEARTBEAT_TTL in ms")


def new_socket(ctx, args):
    """Makes the socket described by the shared options."""
    sock = ctx.socket(SOCKET_TYPES[args.type])
    sock.linger = 0
    sock.sndtimeo = SEND_TIMEOUT_MS
    if args.identity is not None:
        sock.identity = args.identity.encode()
    if args.heartbeat_ivl:
        sock.heartbeat_ivl = args.heartbeat_ivl
    if args.heartbeat_timeout:
        sock.heartbeat_timeout = args.heartbeat_timeout
    if args.heartbeat_ttl:
        sock.heartbeat_ttl = args.heartbeat_ttl
    return sock


class Monitor(threading.Thread):
    """Reports the socket's monitor events as "monitor" lines until stopped."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.mon = sock.get_monitor_socket()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            if not self.mon.poll(50):
                continue
            msg = recv_monitor_message(self.mon)
            event = int(msg["event"])
            emit("monitor", name=EVENT_NAMES.get(event, str(event)), value=int(msg["value"]))
            if event == zmq.EVENT_MONITOR_STOPPED:
                return

    def stop(self):
        self.stopping.set()
        self.join(2)
        self.mon.close(linger=0)


def _recv(sock, timeout_ms):
    """Receives one message, or returns None after timeout_ms."""
    if not sock.poll(timeout_ms, zmq.POLLIN):
        return None
    return sock.recv_multipart()


def run_commands(sock):
    """Obeys the commands on stdin until "quit" or the end of stdin."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        timeout = cmd.get("timeout_ms", 5000)
        if op == "quit":
            return
        elif op == "send":
            if cmd.get("after_ms"):
                time.sleep(cmd["after_ms"] / 1000)
            try:
                for m in cmd["messages"]:
                    sock.send_multipart(from_hex(m))
            except zmq.ZMQError as e:
                emit("error", error=str(e))
                continue
            emit("sent", count=len(cmd["messages"]))
        elif op == "recv":
            got = []
            for _ in range(cmd.get("count", 1)):
                m = _recv(sock, timeout)
                if m is None:
                    break
                got.append(to_hex(m))
            emit("recv" if len(got) == cmd.get("count", 1) else "timeout", messages=got)
        elif op == "request":
            got = []
            for m in cmd["messages"]:
                sock.send_multipart(from_hex(m))
                reply = _recv(sock, timeout)
                if reply is None:
                    break
                got.append(to_hex(reply))
            emit("replies" if len(got) == len(cmd["messages"]) else "timeout", messages=got)
        elif op == "echo":
            done = 0
            for _ in range(cmd["count"]):
                m = _recv(sock, timeout)
                if m is None:
                    break
                sock.send_multipart(m)
                done += 1
            emit("echoed" if done == cmd["count"] else "timeout", count=done)
        else:
            emit("error", error="unknown op " + repr(op))
