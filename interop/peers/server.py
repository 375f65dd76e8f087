"""A libzmq server peer for the interop tests.

Binds a socket of --type on 127.0.0.1 (a free port) and prints {"event": "ready",
"port": P}. With --secret it is a CURVE server (ZMQ_CURVE_SERVER) with that long-term
secret key; with --allow-dir it authenticates clients through pyzmq's
ThreadAuthenticator with configure_curve(domain='*', location=DIR), as Cylc does: only
clients whose public certificate (*.key) is in DIR get in. With --null it is a plain
NULL-mechanism socket. Then it obeys the commands on stdin (see zmqpeer.py).

Keys are Z85 text; pass them as --secret=KEY (Z85 may start with "-").
"""

import argparse

import zmq
from zmq.auth.thread import ThreadAuthenticator

import zmqpeer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    zmqpeer.add_socket_args(parser)
    parser.add_argument("--secret", help="CURVE server secret key (Z85)")
    parser.add_argument("--allow-dir", help="directory of allowed client certificates")
    parser.add_argument("--null", action="store_true", help="NULL mechanism, no CURVE")
    args = parser.parse_args()
    if args.null == bool(args.secret):
        parser.error("give exactly one of --secret and --null")

    ctx = zmq.Context()
    auth = None
    if args.allow_dir:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=args.allow_dir)

    sock = zmqpeer.new_socket(ctx, args)
    if args.secret:
        secret = args.secret.encode()
        sock.curve_server = True
        sock.curve_secretkey = secret
        sock.curve_publickey = zmq.curve_public(secret)
    monitor = zmqpeer.Monitor(sock)
    monitor.start()
    sock.bind("tcp://127.0.0.1:*")
    port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
    zmqpeer.emit("ready", port=port)

    zmqpeer.run_commands(sock)

    monitor.stop()
    sock.close(linger=0)
    if auth:
        auth.stop()
    ctx.term()


if __name__ == "__main__":
    main()
