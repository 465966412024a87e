#!/usr/bin/env python3
"""The hostile client of bench/run-hostile: one client sending issue 15's expensive requests in a loop.

It holds one keep-alive connection (a client elsewhere on the network costs this machine nothing; a
curl process per request would cost the machine that also runs the server more than the requests
do), reads every answer whole, and writes one line per answer: "<kind> <status>". On a 429 it waits
the Retry-After the server gave before its next request, as HTTP clients do: a client that ignores
Retry-After floods, which is the request rate limits' concern (per client, at the edge), not what
one expensive request costs.

Usage: attacker.py URL TOKEN ORG KINDS-COMMA-SEPARATED BATCH-FILE STOP-FILE
Kinds: batch, export, replay, page, expand.
"""
import http.client
import os
import socket
import sys
import time
import urllib.parse


def main() -> None:
    url, token, org, kinds, batch_file, stop_file = sys.argv[1:7]
    target = urllib.parse.urlsplit(url)
    base = f"/v1/orgs/{org}/collections"
    batch = open(batch_file, "rb").read()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    requests = {
        "batch": ("POST", f"{base}/docs/records:batch", batch, {"Prefer": "return=representation"}),
        "export": ("GET", f"/v1/orgs/{org}/audit/export", None, {}),
        "replay": ("GET", f"{base}/docs/events", None, {"Last-Event-ID": "1"}),
        "page": ("GET", f"{base}/docs/records?limit=200", None, {}),
        "expand": ("GET", f"{base}/refs/records?limit=200&expand=doc", None, {}),
    }
    conn = None
    while os.path.exists(stop_file):
        for kind in kinds.split(","):
            if not os.path.exists(stop_file):
                break
            method, path, body, extra = requests[kind]
            if conn is None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            status, retry_after = "000", 0.0
            try:
                conn.request(method, path, body=body, headers={**auth, **extra})
                response = conn.getresponse()
                status = str(response.status)
                if kind == "replay" and response.status == 200:
                    # An event stream stays open: read what the replay sends for two seconds.
                    conn.sock.settimeout(0.2)
                    until = time.monotonic() + 2
                    while time.monotonic() < until:
                        try:
                            if not response.read1(1 << 16):
                                break
                        except (socket.timeout, TimeoutError):
                            pass
                    conn.close()
                    conn = None
                else:
                    response.read()
                    if response.status == 429:
                        retry_after = float(response.getheader("Retry-After", "1"))
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
            print(kind, status, flush=True)
            if retry_after:
                time.sleep(retry_after)


if __name__ == "__main__":
    main()
