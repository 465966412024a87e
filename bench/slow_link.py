#!/usr/bin/env python3
"""A TCP proxy that plays a slow network for bench/run-drills' db-slow drill (the kernel here has no netem, so
`tc qdisc ... netem delay` cannot be used): every byte from either side is delivered DELAY milliseconds after it
arrived, in order, while the link is slow; at once while it is fast. SIGUSR1 makes it slow, SIGUSR2 fast again.
It starts fast. Each connection gets its own connection to the target.
Usage: slow_link.py --listen PORT --target PORT --delay-ms N
"""
import argparse
import asyncio
import signal
import time

slow = False


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk held until DELAY after it arrived while the link is slow."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + (delay if slow else 0), data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except ConnectionError:
        pass
    writer.close()


async def serve(target, delay):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay),
                             pump(server_reader, client_writer, delay), return_exceptions=True)

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()

    def set_slow(value):
        global slow
        slow = value

    async def run():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, set_slow, True)
        loop.add_signal_handler(signal.SIGUSR2, set_slow, False)
        server = await asyncio.start_server(await serve(args.target, args.delay_ms / 1000), "127.0.0.1",
                                            args.listen)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
