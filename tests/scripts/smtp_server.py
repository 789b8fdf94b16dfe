#!/usr/bin/python3
"""A real SMTP server for the e2e tests (Debian's python3-aiosmtpd), on loopback only.

Three listeners, all with AUTH (PLAIN/LOGIN) for USER/PASSWORD:
  plain     no TLS (AUTH allowed in clear, as some office relays do)
  starttls  STARTTLS required before MAIL/AUTH
  tls       implicit TLS from the first byte (the classic port 465)
Every accepted message is written to OUTDIR as <n>.eml (RFC 5322 bytes, with an
X-Envelope-Rcpt header); every AUTH attempt is appended to OUTDIR/../auth.jsonl as
{"login": ..., "password": ...} (a test asserts where the daemon sends its SMTP secret). Prints one JSON line with the ports, then serves until
stdin closes (so it never outlives the test process).

Usage: smtp_server.py CERT KEY OUTDIR USER PASSWORD
"""
import asyncio
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, outdir, user, password = sys.argv[1:6]
os.makedirs(outdir, exist_ok=True)
counter = 0
lock = threading.Lock()


class Store:
    async def handle_DATA(self, server, session, envelope):
        global counter
        with lock:
            counter += 1
            n = counter
        rcpts = ", ".join(envelope.rcpt_tos)
        data = b"X-Envelope-Rcpt: " + rcpts.encode() + b"\r\n" + envelope.original_content
        tmp = os.path.join(outdir, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(outdir, f"{n}.eml"))
        return "250 OK stored"


auth_log = os.path.join(os.path.dirname(os.path.abspath(outdir)), "auth.jsonl")


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword):
        with lock, open(auth_log, "a") as f:
            f.write(json.dumps({"login": auth_data.login.decode(errors="replace"),
                                "password": auth_data.password.decode(errors="replace")}) + "\n")
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)



def free_port():
    # Controller.start() connects to its own port to check readiness, so it needs a
    # real port number up front; the OS picks one that is free right now.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


common = dict(hostname="127.0.0.1", authenticator=authenticator, auth_required=True)
plain = Controller(Store(), port=free_port(), auth_require_tls=False, **common)
starttls = Controller(Store(), port=free_port(), tls_context=ctx, require_starttls=True, **common)
implicit = Controller(Store(), port=free_port(), ssl_context=ctx, auth_require_tls=False, **common)
ports = {}
for name, c in (("plain", plain), ("starttls", starttls), ("tls", implicit)):
    c.start()
    ports[name] = c.port
print(json.dumps(ports), flush=True)
try:
    sys.stdin.read()
finally:
    for c in (plain, starttls, implicit):
        c.stop()
