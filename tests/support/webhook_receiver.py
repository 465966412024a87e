#!/ usr / bin / env python3
"""A webhook receiver for the tests: an HTTP (or, with --tls, HTTPS) server on 127.0.0.1 that
keeps every POST it receives (path, headers, body, the client's port) and answers by its path:
  /status/<code>/...  answers <code>
  /slow/<ms>/...      waits <ms> milliseconds, then answers 200
  /drop/...           answers 200, then closes the connection without saying so (a kept-alive
                      connection the sender finds closed when it sends the next request)
  anything else       answers 200
GET /_received lists what it kept, oldest first. It writes its port to --port-file once it listens.
"""
import argparse
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body):
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the sender gave up (a timeout test)

    def do_GET(self):
        if self.path == "/_received":
            with lock:
                body = json.dumps(received).encode()
            self.answer(200, body)
        else:
            self.answer(404, b"{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with lock:
            received.append({
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body,
                "client_port": self.client_address[1],  # one per connection
            })
        parts = self.path.strip("/").split("/")
        code = 200
        if len(parts) >= 2 and parts[0] == "slow":
            time.sleep(int(parts[1]) / 1000)
        if len(parts) >= 2 and parts[0] == "status":
            code = int(parts[1])
        self.answer(code, json.dumps({"received": True, "status": code}).encode())
        if parts[0] == "drop":
            self.close_connection = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
