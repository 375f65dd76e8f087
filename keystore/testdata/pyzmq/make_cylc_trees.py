# Recreates the pyzmq-written trees in keystore/testdata/pyzmq the way Cylc 8 does it.
import os, shutil, sys, zmq.auth
out = sys.argv[1]
srv = os.path.join(out, "service")
remote = os.path.join(out, "remote")
os.makedirs(os.path.join(srv, "client_public_keys"))
os.makedirs(remote)
old = os.umask(0o177)
# scheduler side: workflow_files.create_server_keys
pub, sec = zmq.auth.create_certificates(srv, "server")
shutil.copyfile(sec, os.path.join(srv, "client.key_secret"))
shutil.copyfile(pub, os.path.join(srv, "client_public_keys", "client_localhost.key"))
# remote side: task_remote_cmd.create_client_keys for install target "hpc"
cpub, _ = zmq.auth.create_certificates(remote, "client")
os.rename(cpub, os.path.join(remote, "client_hpc.key"))
# file install sends server.key; remote-init's KEYSTART payload is saved verbatim
shutil.copyfile(pub, os.path.join(remote, "server.key"))
with open(os.path.join(remote, "client_hpc.key")) as f:
    payload = f.read()
with open(os.path.join(srv, "client_public_keys", "client_hpc.key"), "w") as f:
    f.write(payload)
os.umask(old)
