#!/usr/bin/python3
"""In-app notifications (issue 18), measured from outside over HTTP against a running Liftoff.

Opens one notification stream (Server-Sent Events) per member of an org, then:
  1. push latency: R notifications, each POSTed by the owner to one member (round robin); the time from
     sending the POST to the event arriving on that member's stream, and the POST's own latency;
  2. the same for record events: R records created, each timed until it arrives on a collection's stream;
  3. fan-out: F notifications to every member by role; the time until the last stream has it; then F more
     with every stream closed, to see what the streams' catch-up reads cost the POST.
Prints one JSON object. Used by bench/run-notifications.
"""
import argparse
import asyncio
import json
import statistics
import time


class Http:
    """One keep-alive HTTP/1.1 connection for requests with small bodies."""

    def __init__(self, port):
        self.port = port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method, path, token=None, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while True:
            line = (await self.reader.readline()).decode().strip()
            if not line:
                break
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            payload = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                payload += chunk[:-2]
        else:
            payload = await self.reader.readexactly(length)
        return status, (json.loads(payload) if payload else None)


class Stream:
    """An SSE stream: GET on its own connection, chunked body decoded, events into a queue."""

    def __init__(self, port, path, token):
        self.port, self.path, self.token = port, path, token
        self.events = asyncio.Queue()

    async def open(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode())
        status = int((await reader.readline()).split()[1])
        if status != 200:
            raise RuntimeError(f"stream {self.path}: {status}")
        while (await reader.readline()).strip():
            pass
        self.writer = writer
        self.task = asyncio.create_task(self.pump(reader))
        return self

    async def pump(self, reader):
        text = ""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                return
            text += (await reader.readexactly(size + 2))[:-2].decode()
            while "\n\n" in text:
                block, text = text.split("\n\n", 1)
                event = {}
                for line in block.split("\n"):
                    name, _, value = line.partition(": ")
                    if name in ("event", "data", "id"):
                        event[name] = value
                if "event" in event:
                    self.events.put_nowait((time.perf_counter(), event))

    async def next(self, kind):
        while True:
            at, event = await asyncio.wait_for(self.events.get(), 10)
            if event["event"] == kind:
                return at, event

    def close(self):
        self.task.cancel()
        self.writer.close()


def summary(samples):
    ms = sorted(s * 1000 for s in samples)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "mean_ms": round(statistics.fmean(ms), 2)}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--setup", required=True, help="JSON: org, owner token, members [{id, token}]")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--fanouts", type=int, default=30)
    args = parser.parse_args()
    setup = json.load(open(args.setup))
    org, owner, members = setup["org"], setup["owner"], setup["members"]
    http = await Http(args.port).open()

    streams = [await Stream(args.port, "/v1/me/notifications/events", m["token"]).open() for m in members]
    for s in streams:
        await s.next("unread")

    push, post = [], []
    for i in range(args.rounds):
        k = i % len(members)
        body = {"kind": "bench.ping", "title": f"ping {i}", "user_ids": [members[k]["id"]]}
        sent = time.perf_counter()
        status, _ = await http.request("POST", f"/v1/orgs/{org}/notifications", owner, body)
        answered = time.perf_counter()
        assert status == 201, status
        at, event = await streams[k].next("notification")
        assert json.loads(event["data"])["title"] == f"ping {i}"
        push.append(at - sent)
        post.append(answered - sent)

    status, _ = await http.request("POST", f"/v1/orgs/{org}/collections", owner,
                                   {"name": "pings", "fields": [{"name": "n", "type": "integer"}]})
    assert status in (201, 409), status
    records = await Stream(args.port, f"/v1/orgs/{org}/collections/pings/events", owner).open()
    record_push, record_post = [], []
    for i in range(args.rounds):
        sent = time.perf_counter()
        status, _ = await http.request("POST", f"/v1/orgs/{org}/collections/pings/records", owner, {"n": i})
        answered = time.perf_counter()
        assert status == 201, status
        at, event = await records.next("created")
        record_push.append(at - sent)
        record_post.append(answered - sent)
    records.close()

    fanout, fanout_post = [], []
    for i in range(args.fanouts):
        body = {"kind": "bench.all", "title": f"all {i}", "roles": ["member"]}
        sent = time.perf_counter()
        status, answer = await http.request("POST", f"/v1/orgs/{org}/notifications", owner, body)
        answered = time.perf_counter()
        assert status == 201 and answer["recipients"] == len(members), (status, answer)
        last = 0
        for s in streams:
            at, _ = await s.next("notification")
            last = max(last, at)
        fanout.append(last - sent)
        fanout_post.append(answered - sent)
    for s in streams:
        s.close()
    await asyncio.sleep(0.5)
    quiet_post = []
    for i in range(args.fanouts):
        body = {"kind": "bench.all", "title": f"quiet {i}", "roles": ["member"]}
        sent = time.perf_counter()
        status, answer = await http.request("POST", f"/v1/orgs/{org}/notifications", owner, body)
        quiet_post.append(time.perf_counter() - sent)
        assert status == 201 and answer["recipients"] == len(members), (status, answer)
    print(json.dumps({
        "streams": len(streams),
        "notification": {"push": summary(push), "post": summary(post)},
        "record_event": {"push": summary(record_push), "post": summary(record_post)},
        "fanout": {"recipients": len(members), "all_received": summary(fanout), "post": summary(fanout_post),
                   "deliveries_per_s": round(len(members) * len(fanout) / sum(fanout)),
                   "durable_per_s": round(len(members) * len(fanout_post) / sum(fanout_post)),
                   "post_no_streams": summary(quiet_post),
                   "durable_no_streams_per_s": round(len(members) * len(quiet_post) / sum(quiet_post))},
    }))


asyncio.run(main())
