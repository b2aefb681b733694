"""Bulk export fixtures: a database of its own (the export reads every course in the store, so
courses other tests open must not count), seeded with whole courses' event streams, and the
line-by-line validation of an export's files by the fhir.resources R4B models."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
from fhir.resources.R4B import get_fhir_model_class

from bench.fhir_export import seed as bench_seed
from tests.conftest import _server_url, _with_database
from worker.database import create_pool, migrate


@dataclass(frozen=True)
class Store:
    dsn: str
    pool: asyncpg.Pool


@pytest_asyncio.fixture(scope="module")
async def own_store() -> AsyncIterator[Store]:
    async with fresh_store() as store:
        yield store


@contextlib.asynccontextmanager
async def fresh_store() -> AsyncIterator[Store]:
    """A migrated database of its own, dropped at the end."""
    server = _server_url()
    name = f"course_bulk_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(server, name)
    try:
        await migrate(dsn)
        pool = await create_pool(dsn)
        try:
            yield Store(dsn, pool)
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def seed(pool: asyncpg.Pool, count: int, patients: int | None = None) -> list[str]:
    """`count` whole courses (assessment to completion, six doses), made by the real decider
    (bench/courses.py) and appended through PostgresEventStore, as the workflow appends them:
    faster than driving 200 workflows, and the same event streams. Course i is patient
    i % `patients`'s (default: one patient per course). Their course ids."""
    return await bench_seed(pool, count, patients)


def validated(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every line of every NDJSON file, each validated by its resource type's R4B model: an
    invalid line fails the test naming the file and line (never skipped)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.ndjson")):
        kind = path.stem
        model = get_fhir_model_class(kind)
        lines = path.read_text().splitlines()
        assert lines, f"{path.name} is empty"
        for number, line in enumerate(lines, start=1):
            try:
                resource = model.model_validate_json(line)
            except ValueError as error:  # pydantic's ValidationError, and JSON that does not parse
                raise AssertionError(f"{path.name}:{number} is not a valid {kind}: {error}") from None
            assert resource.get_resource_type() == kind, f"{path.name}:{number} is a {resource.get_resource_type()}"
            found.setdefault(kind, []).append(json.loads(line))
    return found


def counts(found: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    return Counter({kind: len(lines) for kind, lines in found.items()})
