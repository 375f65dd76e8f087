"""A libzmq peer for the zmq4 interop matrix (zmq4_test.go).

One script for both roles, against go-zeromq/zmq4 sockets on our curve:// transport:

  --bind                 CURVE server: binds tcp://127.0.0.1:* and prints
                         {"event": "ready", "port": P}; --secret is its secret key.
  --connect=EP           CURVE client: connects to EP and prints {"event": "ready"};
                         --server-key, --public and --secret are its keys.

With --allow-dir a server admits clients through pyzmq's ThreadAuthenticator with
configure_curve(domain='*', location=DIR), as Cylc does. With --zap-stall it has a ZAP
handler that never answers: the server stops mid-handshake, after WELCOME, and prints
{"event": "monitor", "name": "ZAP_REQUEST_HELD"} for each request it holds. --null
makes a NULL-mechanism socket instead. --hwm sets ZMQ_SNDHWM and ZMQ_RCVHWM (0:
unlimited, so that a PUB drops nothing). A SUB subscribes to each --subscribe topic.
--send-on-connect=TEXT queues a message right after connect(), before any handshake.

Then it obeys the commands on stdin described in zmqpeer.py; monitor events are
reported there too. Keys are Z85 text; pass them as --secret=KEY (Z85 may start
with "-"). Traffic is on 127.0.0.1 only; every wait is bounded.
"""

import argparse
import threading

import zmq
from zmq.auth.thread import ThreadAuthenticator

import zmqpeer


class StallingZAP(threading.Thread):
    """A ZAP handler that takes requests and never replies."""

    def __init__(self, ctx):
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind("inproc://zeromq.zap.01")
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            if self.sock.poll(50):
                self.sock.recv_multipart()
                # Reported like a monitor event, so that it never stands in for a reply.
                zmqpeer.emit("monitor", name="ZAP_REQUEST_HELD", value=0)

    def stop(self):
        self.stopping.set()
        self.join(2)
        self.sock.close(linger=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    zmqpeer.add_socket_args(parser)
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--bind", action="store_true", help="bind 127.0.0.1 (CURVE server)")
    role.add_argument("--connect", help="endpoint to connect to (CURVE client)")
    parser.add_argument("--secret", help="our CURVE secret key (Z85)")
    parser.add_argument("--public", help="client: our CURVE public key (Z85)")
    parser.add_argument("--server-key", help="client: the server's public key (Z85)")
    parser.add_argument("--allow-dir", help="server: directory of allowed client certificates")
    parser.add_argument("--zap-stall", action="store_true", help="server: a ZAP handler that never answers")
    parser.add_argument("--null", action="store_true", help="NULL mechanism, no CURVE")
    parser.add_argument("--hwm", type=int, default=None, help="ZMQ_SNDHWM and ZMQ_RCVHWM")
    parser.add_argument("--subscribe", action="append", default=[], help="SUB topic")
    parser.add_argument("--send-on-connect", help="client: a one-frame message queued right after connect()")
    args = parser.parse_args()
    if args.null == bool(args.secret):
        parser.error("give exactly one of --secret and --null")
    if args.connect and not args.null and not (args.public and args.server_key):
        parser.error("a CURVE client needs --public and --server-key")

    ctx = zmq.Context()
    auth = stall = None
    if args.allow_dir:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=args.allow_dir)
    elif args.zap_stall:
        stall = StallingZAP(ctx)
        stall.start()

    sock = zmqpeer.new_socket(ctx, args)
    if args.hwm is not None:
        sock.sndhwm = args.hwm
        sock.rcvhwm = args.hwm
    if args.secret:
        secret = args.secret.encode()
        if args.bind:
            sock.curve_server = True
            sock.curve_publickey = zmq.curve_public(secret)
        else:
            sock.curve_serverkey = args.server_key.encode()
            sock.curve_publickey = args.public.encode()
        sock.curve_secretkey = secret
    for topic in args.subscribe:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    monitor = zmqpeer.Monitor(sock)
    monitor.start()
    if args.bind:
        sock.bind("tcp://127.0.0.1:*")
        port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        zmqpeer.emit("ready", port=port)
    else:
        sock.connect(args.connect)
        if args.send_on_connect is not None:
            # The connection's pipe exists from connect() on, whatever the handshake
            # does later: this never blocks, and goes out only if a handshake succeeds.
            sock.send(args.send_on_connect.encode(), zmq.DONTWAIT)
        zmqpeer.emit("ready")

    zmqpeer.run_commands(sock)

    monitor.stop()
    sock.close(linger=0)
    if stall:
        stall.stop()
    if auth:
        auth.stop()
    ctx.term()


if __name__ == "__main__":
    main()
