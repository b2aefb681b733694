"""GET /healthz for orchestrators: 200 while the worker runs and PostgreSQL answers, else 503.

A deliberately tiny HTTP/1.0 server on asyncio streams (stdlib only): one request per connection,
no keep-alive, no body parsing. Anything but `GET /healthz` is 404 (or 405 for another method).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[object]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class Health:
    """What /healthz reports: `running` is set by the worker, `database` is probed per request."""

    def __init__(self, database: Probe, *, timeout: float = 2.0) -> None:
        self.running = False
        self._database = database
        self._timeout = timeout

    async def check(self) -> tuple[bool, dict[str, str]]:
        checks = {"worker": "running" if self.running else "stopped"}
        try:
            await asyncio.wait_for(self._database(), self._timeout)
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure is "unhealthy", reported not raised
            checks["database"] = f"error: {type(error).__name__}"
        return self.running and checks["database"] == "ok", checks


def pool_probe(pool: asyncpg.Pool) -> Probe:
    """`SELECT 1` on an asyncpg pool."""

    async def probe() -> object:
        return await pool.fetchval("SELECT 1")

    return probe


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an explicit bind setting


async def serve_health(health: Health, bind: str) -> asyncio.Server:
    """Start serving; close the returned server to stop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                del line  # headers are ignored
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if path != "/healthz":
                status, body = 404, {"error": "not found"}
            elif method not in ("GET", "HEAD"):
                status, body = 405, {"error": "method not allowed"}
            else:
                ok, checks = await health.check()
                status, body = (200 if ok else 503), {"status": "ok" if ok else "unavailable", **checks}
            payload = json.dumps(body).encode()
            head = (
                f"HTTP/1.0 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head + (b"" if method == "HEAD" else payload))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    host, port = split_bind(bind)
    server = await asyncio.start_server(handle, host, port)
    log.info("health endpoint listening", bind=bind, path="/healthz")
    return server
