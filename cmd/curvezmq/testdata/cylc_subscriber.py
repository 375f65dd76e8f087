"""A Cylc-style subscriber, as cylc.flow.network.subscriber.WorkflowSubscriber does it.

usage: cylc_subscriber.py RUN_DIR

Connects a SUB socket to CYLC_WORKFLOW_PUBLISH_PORT with the client's keys (the same
client.key_secret and server.key as a client) and subscribes to every topic. A subscription
takes effect some time after connecting, so it then sends pings through a REQ socket until
a "command" event arrives, and prints {"event": "subscribed"}. Then it waits for the
"shutdown" event and prints {"event": "shutdown", "payload": REASON} (exit 0), or
{"event": "timeout"} (exit 2). Every wait is bounded.
"""

import json
import os
import sys
import time

import zmq
import zmq.auth

from cylc_client import load_contact

WAIT_MS = 20000


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def curve_client(context, kind, srv_dir, host, port):
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 5)
    public, secret = zmq.auth.load_certificate(os.path.join(srv_dir, "client.key_secret"))
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    server_public, _ = zmq.auth.load_certificate(os.path.join(srv_dir, "server.key"))
    sock.curve_serverkey = server_public
    sock.connect("tcp://%s:%d" % (host, port))
    return sock


def main():
    srv_dir = os.path.join(sys.argv[1], ".service")
    contact = load_contact(srv_dir)
    host = contact["CYLC_WORKFLOW_HOST"]
    context = zmq.Context()
    sub = curve_client(context, zmq.SUB, srv_dir, host, int(contact["CYLC_WORKFLOW_PUBLISH_PORT"]))
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    req = curve_client(context, zmq.REQ, srv_dir, host, int(contact["CYLC_WORKFLOW_PORT"]))
    try:
        deadline = time.monotonic() + WAIT_MS / 1000
        subscribed = False
        while not subscribed and time.monotonic() < deadline:
            req.send(json.dumps({"command": "ping"}).encode())
            if not req.poll(WAIT_MS, zmq.POLLIN):
                break
            req.recv()
            while sub.poll(200, zmq.POLLIN):
                topic, _ = sub.recv_multipart()
                if topic == b"command":
                    subscribed = True
                    break
        if not subscribed:
            emit(event="timeout", waiting_for="subscription")
            return 2
        emit(event="subscribed")

        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            if not sub.poll(200, zmq.POLLIN):
                continue
            parts = sub.recv_multipart()
            if parts[0] == b"shutdown":
                emit(event="shutdown", parts=len(parts), payload=parts[1].decode("utf-8"))
                return 0
        emit(event="timeout", waiting_for="shutdown")
        return 2
    finally:
        sub.close()
        req.close()
        context.term()


if __name__ == "__main__":
    sys.exit(main())
