#!/usr/bin/env python3
"""TCP relay that delays every byte by a fixed time in each direction.

usage: delay_relay.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards each connection to
TARGET_HOST:TARGET_PORT. Bytes read at time t are written at t + DELAY_MS,
in order. The connection thus keeps TCP's ordering and loses nothing, and
only its latency grows. tests/e2e/test_lossy_link.sh uses it in place of
netem, which the test kernel lacks. Prints "listening" once it accepts.
"""
import asyncio
import signal
import sys

CHUNK = 65536


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk DELAY seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
    except ConnectionError:
        pass
    await queue.put((loop.time() + delay, None))
    try:
        await sender
    except ConnectionError:
        pass


async def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    listen_port, host = int(sys.argv[1]), sys.argv[2]
    target_port, delay = int(sys.argv[3]), int(sys.argv[4]) / 1000.0

    async def accept(client_reader, client_writer):
        try:
            target_reader, target_writer = await asyncio.open_connection(
                host, target_port)
        except OSError as err:
            print("connecting to %s:%d failed: %s" % (host, target_port, err),
                  file=sys.stderr, flush=True)
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, target_writer, delay),
            pump(target_reader, client_writer, delay))

    server = await asyncio.start_server(accept, "127.0.0.1", listen_port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
