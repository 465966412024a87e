#!/usr/bin/env python3
"""A webhook receiver for bench/run-webhooks: asyncio, HTTP/1.1 with keep-alive, and for every
POST it checks the Standard Webhooks signature with the endpoint's secret (HMAC-SHA256 of
id.timestamp.body; the secrets file maps a path to its "whsec_..." secret), that the event's seq is
above the last one the path received (order per endpoint), and how long after the event happened
it arrived. GET /_stats answers the counts; GET /_reset clears them.
Usage: webhook_sink.py --port N --secrets FILE
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime

stats = {}
secrets = {}
last_seq = {}


def reset():
    stats.clear()
    stats.update(received=0, verified=0, bad_signature=0, out_of_order=0, duplicates=0,
                 first=None, last=None, lags_ms=[])
    last_seq.clear()


def check(path, headers, body):
    now = time.time()
    stats["received"] += 1
    stats["first"] = stats["first"] or now
    stats["last"] = now
    secret = secrets.get(path)
    signed = f'{headers.get("webhook-id", "")}.{headers.get("webhook-timestamp", "")}.'.encode() + body
    ok = False
    if secret:
        key = base64.b64decode(secret[len("whsec_"):])
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        ok = any(hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split(" "))
    if not ok:
        stats["bad_signature"] += 1
        return
    stats["verified"] += 1
    event = json.loads(body)
    seq = event["data"]["seq"]
    previous = last_seq.get(path, 0)
    if seq == previous:
        stats["duplicates"] += 1
    elif seq < previous:
        stats["out_of_order"] += 1
    last_seq[path] = max(previous, seq)
    happened = datetime.fromisoformat(event["data"]["occurred_at"].replace("Z", "+00:00")).timestamp()
    stats["lags_ms"].append((now - happened) * 1000)


async def serve(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            method, path, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, value = header.decode("latin-1").split(":", 1)
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path == "/_stats":
                lags = sorted(stats["lags_ms"])
                answer = {k: v for k, v in stats.items() if k != "lags_ms"}
                if lags:
                    answer["lag_p50_ms"] = lags[len(lags) // 2]
                    answer["lag_p99_ms"] = lags[min(len(lags) - 1, len(lags) * 99 // 100)]
                payload = json.dumps(answer).encode()
            elif method == "GET" and path == "/_reset":
                reset()
                payload = b"{}"
            else:
                check(path, headers, body)
                payload = b'{"ok":true}'
            close = headers.get("connection", "").lower() == "close"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         str(len(payload)).encode() + (b"\r\nConnection: close" if close else b"") +
                         b"\r\n\r\n" + payload)
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets", required=True)
    args = parser.parse_args()
    with open(args.secrets) as f:
        secrets.update(json.load(f))
    reset()
    server = await asyncio.start_server(serve, "127.0.0.1", args.port, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
