#!/usr/bin/env python3
"""An SMTP sink for bench/run-email: Debian's aiosmtpd on 127.0.0.1 that accepts every message,
checks that it parses as a multipart/alternative email with a link, and counts. With --starttls it
offers (and requires) STARTTLS. GET /_stats on --http-port answers {"accepted", "bad", "tls",
"first", "last"}; GET /_reset clears them.
With --blast N it is instead a client: C threads (--connections), each sending N/C copies of one
message over its one connection, or with --fresh each over a connection of its own (as Liftoff
sends), for the sink's own ceiling (prints messages/s).
"""
import argparse
import asyncio
import email
import email.policy
import json
import smtplib
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

stats = {}
lock = threading.Lock()


def reset():
    with lock:
        stats.clear()
        stats.update(accepted=0, bad=0, tls=0, first=None, last=None)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        ok = (message.get_content_type() == "multipart/alternative" and text is not None
              and "#token=" in text.get_content())
        now = time.time()
        with lock:
            stats["accepted"] += 1
            stats["bad"] += 0 if ok else 1
            stats["tls"] += 1 if server.transport.get_extra_info("ssl_object") else 0
            stats["first"] = stats["first"] or now
            stats["last"] = now
        return "250 OK"


class Stats(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/_reset":
            reset()
        with lock:
            body = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def serve(args):
    from aiosmtpd.smtp import SMTP
    options = {"hostname": "localhost"}
    if args.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*args.starttls)
        options.update(tls_context=ctx, require_starttls=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler(), loop=loop, **options),
                                      host="127.0.0.1", port=args.port)
    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), Stats)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    await server.serve_forever()


def blast(args):
    message = ("From: a@bench.test\r\nTo: b@bench.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
               "Content-Type: text/plain\r\n\r\nopen https://app.test/x#token=t\r\n--b\r\n"
               "Content-Type: text/html\r\n\r\n<a href=x>x</a>\r\n--b--\r\n")
    per = args.blast // args.connections

    def connect():
        client = smtplib.SMTP("127.0.0.1", args.port)
        if args.starttls:
            client.starttls(context=ssl._create_unverified_context())
        return client

    def one():
        client = None if args.fresh else connect()
        for _ in range(per):
            if args.fresh:
                fresh = connect()
                fresh.sendmail("a@bench.test", ["b@bench.test"], message)
                fresh.quit()
            else:
                client.sendmail("a@bench.test", ["b@bench.test"], message)
        if client:
            client.quit()

    threads = [threading.Thread(target=one) for _ in range(args.connections)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(int(per * args.connections / (time.time() - start)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http-port", type=int)
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--blast", type=int)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    if args.blast:
        blast(args)
    else:
        reset()
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
