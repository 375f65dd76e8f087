"""A libzmq client peer for the interop tests.

Connects a socket of --type to --connect (a tcp://127.0.0.1:PORT endpoint) and prints
{"event": "ready"}. With --server-key, --public and --secret it is a CURVE client
(ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY); with --null it is a plain
NULL-mechanism socket. A SUB subscribes to each --subscribe topic. Then it obeys the
commands on stdin (see zmqpeer.py).

Keys are Z85 text; pass them as --secret=KEY (Z85 may start with "-").
"""

import argparse

import zmq

import zmqpeer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    zmqpeer.add_socket_args(parser)
    parser.add_argument("--connect", required=True, help="endpoint to connect to")
    parser.add_argument("--server-key", help="CURVE server public key (Z85)")
    parser.add_argument("--public", help="CURVE client public key (Z85)")
    parser.add_argument("--secret", help="CURVE client secret key (Z85)")
    parser.add_argument("--null", action="store_true", help="NULL mechanism, no CURVE")
    parser.add_argument("--subscribe", action="append", default=[], help="SUB topic")
    args = parser.parse_args()
    curve = (args.server_key, args.public, args.secret)
    if args.null == all(curve) or not (args.null or all(curve)):
        parser.error("give --server-key, --public and --secret, or --null")

    ctx = zmq.Context()
    sock = zmqpeer.new_socket(ctx, args)
    if not args.null:
        sock.curve_serverkey = args.server_key.encode()
        sock.curve_publickey = args.public.encode()
        sock.curve_secretkey = args.secret.encode()
    for topic in args.subscribe:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    monitor = zmqpeer.Monitor(sock)
    monitor.start()
    sock.connect(args.connect)
    zmqpeer.emit("ready")

    zmqpeer.run_commands(sock)

    monitor.stop()
    sock.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    main()
