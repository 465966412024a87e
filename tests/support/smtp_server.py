#!/usr/bin/env python3
"""An SMTP server for the tests: Debian's aiosmtpd on 127.0.0.1, which keeps every message it
accepts (envelope, parsed headers and parts, whether TLS and AUTH were used) and lists them as JSON
at GET /_received on a second, HTTP port. Options:
  --starttls CERT KEY   offers STARTTLS (and requires it before MAIL)
  --tls CERT KEY        speaks TLS from the first byte (port 465 style)
  --auth USER:PASSWORD  requires AUTH (PLAIN or LOGIN) with these credentials
Recipients steer the answer: refused@... gets 550, busy@... gets 451, slow@... waits 5 s first.
It writes "<smtp port> <http port>" to --port-file once both listen.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

received = []
lock = threading.Lock()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        if address.startswith("slow@"):
            await asyncio.sleep(5)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        with lock:
            received.append({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "subject": str(message["subject"]),
                "from": str(message["from"]),
                "to": str(message["to"]),
                "headers": [name for name in message.keys()],
                "traceparent": message.get("traceparent"),
                "content_type": message.get_content_type(),
                "text": text.get_content() if text is not None else None,
                "html": html.get_content() if html is not None else None,
                "tls": (session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None),
                "authenticated": bool(session.authenticated),
                "defects": [str(d) for d in message.defects],
            })
        return "250 Message accepted"


class Listing(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with lock:
            body = json.dumps(received).encode()
        self.send_response(200 if self.path == "/_received" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--tls", nargs=2)
    parser.add_argument("--auth")
    args = parser.parse_args()

    options = {"hostname": "localhost", "auth_require_tls": bool(args.starttls or args.tls)}
    if args.starttls:
        options["tls_context"] = context(*args.starttls)
        options["require_starttls"] = True
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, handled=False)

        options["authenticator"] = authenticator
        options["auth_required"] = True
    handler = Handler()
    loop = asyncio.get_running_loop()
    implicit = context(*args.tls) if args.tls else None
    server = await loop.create_server(lambda: SMTP(handler, loop=loop, **options),
                                      host="127.0.0.1", port=0, ssl=implicit)
    listing = ThreadingHTTPServer(("127.0.0.1", 0), Listing)
    threading.Thread(target=listing.serve_forever, daemon=True).start()
    smtp_port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as out:
        out.write(f"{smtp_port} {listing.server_address[1]}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
