"""`course api`: serve the HTTP API and the console with uvicorn (also started by `course dev`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.staff import AnyOf, ConfiguredStaff, PostgresStaff, StaffDirectory
from application.courses import CourseClient
from worker.database import create_pool, database_url, migrate
from worker.logging import configure_logging
from worker.settings import Settings
from worker.signals import until_signalled


class _Server(uvicorn.Server):
    """Stopped by our event, not by its own signal handlers: `course dev` owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def staff_directory(settings: Settings, staff: PostgresStaff) -> StaffDirectory:
    if settings.api_tokens is None:
        return staff
    configured = ConfiguredStaff.parse(settings.api_tokens.get_secret_value()).revocable(staff.pool)
    return AnyOf(configured, staff)


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[str]:
    """Serve `app` in this event loop (port 0: any free port); yields its base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port taken, ...)
            raise RuntimeError("the API server stopped while starting")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{'localhost' if host in {'127.0.0.1', '0.0.0.0'} else host}:{bound}"  # noqa: S104
    finally:
        server.should_exit = True
        await task


async def serve(
    settings: Settings, dsn: str | None = None, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    """Serve the API and console until `stop` is set; `ready` is set once requests are answered."""
    from worker.main import connect  # noqa: PLC0415 - the worker's client: same TLS, keys, converter

    client = await connect(settings)
    dsn = dsn or database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    pool = await create_pool(dsn, max_size=8)
    try:
        app = create_app(
            CourseClient(client, settings.course_task_queue),
            staff_directory(settings, PostgresStaff(pool)),
            pool,
            time_zone=settings.clinic_time_zone,
            secure_cookies=settings.api_secure_cookies,
            public_origin=settings.api_public_origin,
            idle_minutes=settings.console_idle_minutes,
            session_hours=settings.console_session_hours,
            max_body_bytes=settings.api_max_body_bytes,
            clinic_policy=settings.clinic_policy,
            export_dir=settings.export_dir(),
        )
        async with serving(app, settings.api_host, settings.api_port):
            if ready is not None:
                ready.set()
            await (stop or asyncio.Event()).wait()
    finally:
        await pool.close()


def api_url(settings: Settings) -> str:
    host = settings.api_host
    shown = "localhost" if host in {"127.0.0.1", "0.0.0.0", "::", "::1"} else host  # noqa: S104
    return f"http://{shown}:{settings.api_port}"


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)

    print(f"API and console: {api_url(settings)} (console at /console, OpenAPI at /docs)", flush=True)
    asyncio.run(until_signalled(lambda stop: serve(settings, stop=stop)))
