"""A Cylc-style client, as cylc.flow.network.client.WorkflowRuntimeClient does it.

usage: cylc_client.py RUN_DIR COMMAND [--raw TEXT] [--timeout-ms N]

Reads RUN_DIR/.service/contact for the host and port, loads client.key_secret (both halves
of the client's key pair) and server.key with pyzmq's load_certificate, connects a REQ
socket over CURVE, sends {"command": COMMAND, "args": {}, "meta": {...}} (or TEXT as it is,
with --raw) and waits for the reply with a poller. Prints one JSON line: {"reply": ...}
with the decoded reply (exit 0), or {"timeout": true} (exit 2).
"""

import argparse
import json
import os
import socket
import sys

import zmq
import zmq.auth


def load_contact(srv_dir):
    """Cylc's load_contact_file: KEY=VALUE lines, both sides stripped."""
    data = {}
    with open(os.path.join(srv_dir, "contact"), encoding="utf-8") as f:
        for line in f.read().splitlines():
            key, value = line.split("=", 1)
            data[key.strip()] = value.strip()
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("command")
    parser.add_argument("--raw", default=None)
    parser.add_argument("--timeout-ms", type=int, default=5000)
    opts = parser.parse_args()

    srv_dir = os.path.join(opts.run_dir, ".service")
    contact = load_contact(srv_dir)
    host = contact["CYLC_WORKFLOW_HOST"]
    port = int(contact["CYLC_WORKFLOW_PORT"])

    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 5)
    client_public, client_secret = zmq.auth.load_certificate(
        os.path.join(srv_dir, "client.key_secret"))
    sock.curve_publickey = client_public
    sock.curve_secretkey = client_secret
    server_public, _ = zmq.auth.load_certificate(os.path.join(srv_dir, "server.key"))
    sock.curve_serverkey = server_public
    sock.connect("tcp://%s:%d" % (host, port))

    if opts.raw is not None:
        message = opts.raw.encode("utf-8")
    else:
        message = json.dumps({
            "command": opts.command,
            "args": {},
            "meta": {"prog": "cylc_client.py", "host": socket.gethostname(),
                     "comms_method": "zmq"},
        }).encode("utf-8")
    try:
        sock.send(message)
        if sock.poll(opts.timeout_ms, zmq.POLLIN):
            reply = json.loads(sock.recv().decode("utf-8"))
            print(json.dumps({"reply": reply}))
            return 0
        print(json.dumps({"timeout": True}))
        return 2
    finally:
        sock.close()
        context.term()


if __name__ == "__main__":
    sys.exit(main())
