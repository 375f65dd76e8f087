"""A Cylc-style scheduler, following the recipe of Cylc 8's scheduler and server.

usage: cylc_server.py RUN_DIR ID

Does what cylc.flow.workflow_files.create_server_keys and
cylc.flow.network.server.WorkflowRuntimeServer do: makes .service/client_public_keys, writes
server.key and server.key_secret with zmq.auth.create_certificates under umask 0o177, copies
server.key_secret to client.key_secret and server.key to
client_public_keys/client_localhost.key; starts a ThreadAuthenticator and calls
configure_curve(domain='*', location=client_public_keys); binds a REP and a PUB socket as
CURVE servers on random ports of all interfaces; then writes the contact file as Cylc's
dump_contact_file does (sorted KEY=VALUE lines, fsynced).

Requests are Cylc's JSON. Commands: ping (data "pong"), echo (data: the command and its
args) and stop (replies, publishes the shutdown event, then removes the keys and, last, the
contact file, and exits 0). Anything else gets an error reply. A watchdog ends the process
after two minutes whatever happens.
"""

import json
import os
import shlex
import shutil
import socket
import sys
import threading

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

LIFETIME_S = 120


def create_server_keys(srv_dir):
    client_public_keys = os.path.join(srv_dir, "client_public_keys")
    os.makedirs(client_public_keys, exist_ok=True)
    old_umask = os.umask(0o177)
    try:
        zmq.auth.create_certificates(srv_dir, "server")
        shutil.copyfile(os.path.join(srv_dir, "server.key_secret"),
                        os.path.join(srv_dir, "client.key_secret"))
        shutil.copyfile(os.path.join(srv_dir, "server.key"),
                        os.path.join(client_public_keys, "client_localhost.key"))
    finally:
        os.umask(old_umask)
    return client_public_keys


def remove_keys_on_server(srv_dir):
    for name in ("server.key", "server.key_secret", "client.key_secret"):
        try:
            os.unlink(os.path.join(srv_dir, name))
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(srv_dir, "client_public_keys"), ignore_errors=True)


def curve_server(context, kind, srv_dir):
    sock = context.socket(kind)
    public, secret = zmq.auth.load_certificate(os.path.join(srv_dir, "server.key_secret"))
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_server = True
    port = sock.bind_to_random_port("tcp://*")
    return sock, port


def host_address():
    """Cylc's host self-identification by address, falling back to the loopback address."""
    try:
        return socket.gethostbyname(socket.getfqdn())
    except OSError:
        return "127.0.0.1"


def dump_contact_file(srv_dir, data):
    path = os.path.join(srv_dir, "contact")
    with open(path, "wb") as f:
        for key, value in sorted(data.items()):
            f.write(("%s=%s\n" % (key, value)).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(srv_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def command_line():
    with open("/proc/self/cmdline", "rb") as f:
        args = f.read().split(b"\0")[:-1]
    return shlex.join(a.decode("utf-8") for a in args)


def reply_for(raw):
    try:
        request = json.loads(raw.decode("utf-8"))
        command = request["command"]
        args = request.get("args") or {}
    except Exception as exc:  # a malformed request still gets a reply, as in Cylc
        return {"error": {"message": "malformed request: %s" % exc}}, False
    if command == "ping":
        return {"data": "pong"}, False
    if command == "echo":
        return {"data": {"command": command, "args": args}}, False
    if command == "stop":
        return {"data": "stopping"}, True
    return {"error": {"message": "No method by the name \"%s\"" % command}}, False


def main():
    run_dir, workflow_id = sys.argv[1], sys.argv[2]
    watchdog = threading.Timer(LIFETIME_S, os._exit, [3])
    watchdog.daemon = True
    watchdog.start()

    srv_dir = os.path.join(run_dir, ".service")
    os.makedirs(srv_dir, exist_ok=True)
    client_public_keys = create_server_keys(srv_dir)

    context = zmq.Context()
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=client_public_keys)
    rep, port = curve_server(context, zmq.REP, srv_dir)
    rep.sndhwm = 10000
    pub, pub_port = curve_server(context, zmq.PUB, srv_dir)

    dump_contact_file(srv_dir, {
        "CYLC_API": "5",
        "CYLC_VERSION": "8.4.0",
        "CYLC_WORKFLOW_COMMAND": command_line(),
        "CYLC_WORKFLOW_HOST": host_address(),
        "CYLC_WORKFLOW_ID": workflow_id,
        "CYLC_WORKFLOW_OWNER": os.environ.get("USER", "user"),
        "CYLC_WORKFLOW_PID": str(os.getpid()),
        "CYLC_WORKFLOW_PORT": str(port),
        "CYLC_WORKFLOW_PUBLISH_PORT": str(pub_port),
        "CYLC_WORKFLOW_RUN_DIR_ON_WORKFLOW_HOST": os.path.abspath(run_dir),
        "CYLC_WORKFLOW_UUID": "b0b4a8f2-6a3e-4d47-9d0c-5f0a33c5f1aa",
        "SCHEDULER_CYLC_PATH": "None",
        "SCHEDULER_SSH_COMMAND": "ssh -oBatchMode=yes -oConnectTimeout=10",
        "SCHEDULER_USE_LOGIN_SHELL": "True",
    })

    stop = False
    while not stop:
        if not rep.poll(100, zmq.POLLIN):
            continue
        reply, stop = reply_for(rep.recv())
        rep.send(json.dumps(reply).encode("utf-8"))

    # Cylc's shutdown order: the server, then the keys, then the contact file.
    pub.send_multipart([b"shutdown", b"stop requested"])
    rep.close(linger=1000)
    pub.close(linger=1000)
    auth.stop()
    context.term()
    remove_keys_on_server(srv_dir)
    os.unlink(os.path.join(srv_dir, "contact"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
