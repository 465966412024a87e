#!/usr/bin/env python3
"""/metrics with many organizations active (issue 23), over HTTP against a release Liftoff.

Starts the binary with its embedded PostgreSQL, signs one user up, creates ORGS organizations and makes one
request as each (so the tenant tally has seen them all), then scrapes /metrics SCRAPES times on one keep-alive
connection, plain and gzip (as Prometheus asks), before the orgs exist and after. Prints the time per scrape
(median, p99) and the bytes. Usage: metrics_scrape.py LIFTOFF_BINARY [ORGS] [SCRAPES]
"""
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

binary = sys.argv[1]
orgs_wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
scrapes = int(sys.argv[3]) if len(sys.argv) > 3 else 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


data_dir = tempfile.mkdtemp(prefix="liftoff-scrape-")
env = dict(os.environ, LIFTOFF_DATA_DIR=data_dir, LIFTOFF_EMBEDDED_PG_PORT=str(free_port()),
           LIFTOFF_LISTEN="127.0.0.1:0", LIFTOFF_THREADS="2", LIFTOFF_RATE_LIMITS="false",
           LIFTOFF_ACCESS_LOG="off")
server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
port = None
deadline = time.time() + 120
for line in server.stdout:
    m = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
    if time.time() > deadline:
        break
if port is None:
    server.kill()
    sys.exit("liftoff did not start")
threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()


def call(conn, method, path, token=None, body=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read(), r


def scrape_round(label):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for encoding in ("identity", "gzip"):
        times, size = [], 0
        for _ in range(scrapes):
            start = time.perf_counter()
            status, body, _ = call(conn, "GET", "/metrics", headers={"Accept-Encoding": encoding})
            times.append((time.perf_counter() - start) * 1000)
            assert status == 200, status
            size = len(body)
        times.sort()
        print(f"{label:<28} {encoding:<9} median {statistics.median(times):7.2f} ms  "
              f"p99 {times[int(0.99 * (len(times) - 1))]:7.2f} ms  {size:>8} bytes", flush=True)
    conn.close()


try:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    status, body, _ = call(conn, "POST", "/v1/auth/signup",
                           body={"email": "scrape@example.com", "password": "a long enough password",
                                 "name": "Scrape Bench"})
    assert status == 201, body
    token = json.loads(body)["token"]
    scrape_round("no organization")

    org_ids, lock = [], threading.Lock()
    started = time.perf_counter()

    def make(count):
        c = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(count):
            s, b, _ = call(c, "POST", "/v1/orgs", token, {"name": f"Scrape org {i}"})
            assert s == 201, b
            org_id = json.loads(b)["id"]
            s, b, _ = call(c, "GET", f"/v1/orgs/{org_id}", token)  # the org's request, tallied
            assert s == 200, b
            with lock:
                org_ids.append(org_id)

    workers = [threading.Thread(target=make, args=(orgs_wanted // 8,)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(f"# {len(org_ids)} organizations created and each requested once in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    scrape_round(f"{len(org_ids)} organizations active")
finally:
    server.terminate()
    server.wait(30)
