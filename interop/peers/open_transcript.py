"""Opens every box of a CurveZMQ handshake transcript with libsodium (PyNaCl).

This is a second, independent reading of RFC 26: nothing here comes from the Go code.
Given the transcript (lines "NAME HEX" of command bodies: hello, welcome, initiate,
ready, message-c2s-N, message-s2c-N; '#' lines are comments) as the only argument, and
on stdin a JSON object with the secrets in hex:

  server_secret, client_secret                 the long-term secret keys s and c
  server_transient_secret, client_transient_secret   s' and c'
  cookie_key                                   the server's cookie key

it prints one JSON object: the public keys libsodium derives from the secrets, and the
plaintext of every box in hex, each opened the way its receiver opens it. If a box does
not open it prints {"event": "error", "error": ...} and exits with status 1.
"""

import binascii
import json
import sys

from nacl.bindings import crypto_box_open, crypto_scalarmult_base, crypto_secretbox_open
from nacl.exceptions import CryptoError


def fail(what):
    print(json.dumps({"event": "error", "error": what}))
    sys.exit(1)


def box_open(what, box, nonce, pk, sk):
    """Opens a crypto_box (MAC first, as CurveZMQ and NaCl's "easy" form lay it out)."""
    try:
        return crypto_box_open(box, nonce, pk, sk)
    except CryptoError:
        fail(what + " does not open")


def command(body, name):
    """Checks a command's length-prefixed name and returns what follows it."""
    if body[0] != len(name) or body[1:1 + len(name)] != name:
        fail("not a %s command" % name.decode())
    return body[1 + len(name):]


def main():
    commands = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, value = line.split(" ", 1)
                commands[name] = binascii.unhexlify(value)
    secrets = {k: binascii.unhexlify(v) for k, v in json.load(sys.stdin).items()}
    s, c = secrets["server_secret"], secrets["client_secret"]
    s_t, c_t = secrets["server_transient_secret"], secrets["client_transient_secret"]
    S, C = crypto_scalarmult_base(s), crypto_scalarmult_base(c)
    S_t, C_t = crypto_scalarmult_base(s_t), crypto_scalarmult_base(c_t)
    out = {"event": "opened", "server_public": S, "client_public": C,
           "server_transient_public": S_t, "client_transient_public": C_t}

    # HELLO: version, 72 bytes of padding, C', short nonce, Box[64 zeros](C' -> S).
    hello = command(commands["hello"], b"HELLO")
    out["hello_transient"] = hello[74:106]
    out["hello"] = box_open("HELLO box", hello[114:], b"CurveZMQHELLO---" + hello[106:114], C_t, s)

    # WELCOME: 16-byte nonce, Box[S' + cookie](S -> C'), opened by the client.
    welcome = command(commands["welcome"], b"WELCOME")
    out["welcome"] = plain = box_open("WELCOME box", welcome[16:], b"WELCOME-" + welcome[:16], S, c_t)
    cookie = plain[32:]
    try:
        out["cookie"] = crypto_secretbox_open(cookie[16:], b"COOKIE--" + cookie[:16], secrets["cookie_key"])
    except CryptoError:
        fail("cookie does not open")

    # INITIATE: cookie, short nonce, Box[C + vouch nonce + vouch + metadata](C' -> S'),
    # opened by the server; the vouch is Box[C' + S](C -> S').
    initiate = command(commands["initiate"], b"INITIATE")
    nonce = b"CurveZMQINITIATE" + initiate[96:104]
    out["initiate"] = plain = box_open("INITIATE box", initiate[104:], nonce, C_t, s_t)
    out["vouch"] = box_open("vouch", plain[48:128], b"VOUCH---" + plain[32:48], plain[:32], s_t)

    # READY: short nonce, Box[metadata](S' -> C'), opened by the client.
    ready = command(commands["ready"], b"READY")
    out["ready"] = box_open("READY box", ready[8:], b"CurveZMQREADY---" + ready[:8], S_t, c_t)

    # MESSAGE: short nonce, Box[flags + payload] between the transient keys.
    out["messages"] = {}
    for name, body in sorted(commands.items()):
        if not name.startswith("message-"):
            continue
        m = command(body, b"MESSAGE")
        if "-c2s-" in name:
            prefix, pk, sk = b"CurveZMQMESSAGEC", C_t, s_t
        else:
            prefix, pk, sk = b"CurveZMQMESSAGES", S_t, c_t
        out["messages"][name] = box_open(name, m[8:], prefix + m[:8], pk, sk)

    def hexed(v):
        if isinstance(v, dict):
            return {k: hexed(x) for k, x in v.items()}
        return binascii.hexlify(v).decode() if isinstance(v, bytes) else v

    print(json.dumps(hexed(out)))


if __name__ == "__main__":
    main()
