"""An OTLP/HTTP sink for bench/run-tracing: reads each POST /v1/traces and answers 200 with an empty
ExportTraceServiceResponse; counts requests and bytes (printed when it stops)."""
import http.server
import signal
import sys

received = {"requests": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received["requests"] += 1
        received["bytes"] += len(body)
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
    signal.signal(signal.SIGTERM, lambda *_: (print(received, flush=True), sys.exit(0)))
    server.serve_forever()


if __name__ == "__main__":
    main()
