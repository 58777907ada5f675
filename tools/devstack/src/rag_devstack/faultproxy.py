"""A fault-injecting TCP proxy for tests: put it between two services, then slow or break the link.

No toxiproxy server runs here, so this is the small part of it the tests need. It runs its own event
loop in a thread, so synchronous tests can drive it:

    with FaultProxy("127.0.0.1", retrieval_port) as proxy:
        ... point the orchestrator at proxy.url ...
        proxy.set_latency(2.0)   # every answer from upstream arrives 2 s late
        proxy.set_mode("refuse") # new connections are closed at once, live ones are cut
        proxy.set_mode("blackhole")  # connections are accepted and never answered
        proxy.set_mode("pass")
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Literal, Self

Mode = Literal["pass", "refuse", "blackhole"]
CHUNK_BYTES = 65_536


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.latency_s = 0.0
        self.mode: Mode = "pass"
        self.connections_seen = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        self._run(self._listen())
        return self

    def stop(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def set_latency(self, seconds: float) -> None:
        """Delay every chunk the upstream sends back by `seconds`."""
        self.latency_s = seconds

    def set_mode(self, mode: Mode) -> None:
        """`refuse` and `blackhole` also cut the connections that are open now (keep-alive included)."""
        self.mode = mode
        if mode != "pass":
            self._run(self._cut_live())

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0, family=socket.AF_INET)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_live()

    async def _cut_live(self) -> None:
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._live.add(writer)
        if self.mode == "blackhole":
            await self._swallow(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._live.discard(writer)
            writer.transport.abort()
            return
        self._live.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer, delayed=False),
            self._pipe(up_reader, writer, delayed=True),
        )

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(CHUNK_BYTES):
                pass
        except ConnectionError:
            pass

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                if delayed and self.latency_s:
                    await asyncio.sleep(self.latency_s)
                if self.mode != "pass":
                    break
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._live.discard(writer)
            writer.transport.abort()
