"""A TCP forwarder in front of the broker that can cut a connection just as a chosen request goes out.

Clients reach the broker through it (the broker advertises the forwarder's port), so a test can
make the broker's connection drop at the exact request it wants to test, instead of stopping
the broker and hoping the timing lines up.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import Counter

from tests.conftest import free_port

#: Kafka request type numbers (api keys) the tests cut on.
FIND_COORDINATOR = 10


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to the broker; ``cut_next(api_key)`` closes the connection that sends one."""

    host = "127.0.0.1"

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.armed: Counter[int] = Counter()
        self.cut: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="cutting-proxy", daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start listening")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut_next(self, api_key: int, times: int = 1) -> None:
        with self._lock:
            self.armed[api_key] += times

    def _take(self, api_key: int) -> bool:
        with self._lock:
            if self.armed[api_key] <= 0:
                return False
            self.armed[api_key] -= 1
            self.cut[api_key] += 1
            return True

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._forward, self.host, self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            connections = asyncio.all_tasks(self._loop)
            for task in connections:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
            self._loop.close()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection(self.host, self.target_port)
        replies = asyncio.ensure_future(self._pipe(broker_reader, client_writer))
        try:
            while True:
                size_bytes = await client_reader.readexactly(4)
                request = await client_reader.readexactly(struct.unpack(">i", size_bytes)[0])
                if self._take(struct.unpack(">h", request[:2])[0]):
                    break
                broker_writer.write(size_bytes + request)
                await broker_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            replies.cancel()
            client_writer.close()
            broker_writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
