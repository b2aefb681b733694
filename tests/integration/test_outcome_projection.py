"""The outcome projection on PostgreSQL: maintained incrementally, it equals the projection rebuilt
from zero and the pure fold of each stream, however appends and catch-ups interleave.

The streams are tests/outcome_cohort.py's (made by the course's own decider), appended through
PostgresEventStore.append, the production path. Each test gets a database of its own, since the
projection reads every event in the store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.event_store import PostgresEventStore
from application.outcomes import OutcomeProjection, fold_stream
from application.reads import ReadRefused
from application.reports import OutcomeReports
from course.events import EventEnvelope
from tests import story
from tests.outcome_cohort import HAND_COHORT, fresh_database, seed, streams
from trust.access_log import AccessLog

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database() as created:
        yield created


@pytest.fixture(scope="module")
def cohort() -> list[list[EventEnvelope]]:
    return streams()


async def rows(pool: asyncpg.Pool) -> dict[str, tuple[int, int, Any]]:
    found = await pool.fetch("SELECT stream_id, version, global_position, outcome FROM course_outcomes")
    return {r["stream_id"]: (r["version"], r["global_position"], r["outcome"]) for r in found}


def expected(built: list[list[EventEnvelope]]) -> dict[str, Any]:
    folded = {stream[0].stream_id: fold_stream(stream) for stream in built}
    return {stream: outcome.model_dump(mode="json") for stream, outcome in folded.items() if outcome is not None}


async def test_rebuilt_from_zero_equals_the_projection_kept_up_as_courses_went(
    pool: asyncpg.Pool, cohort: list[list[EventEnvelope]]
) -> None:
    store, projection = PostgresEventStore(pool), OutcomeProjection(pool, batch_size=7)
    # Half of each stream, a catch-up, then the rest: a course's row is folded across catch-ups.
    await seed(store, [s[: len(s) // 2] for s in cohort])
    assert await projection.catch_up() == sum(len(s) // 2 for s in cohort)
    for stream in cohort:
        await store.append(stream[0].stream_id, len(stream) // 2, stream[len(stream) // 2 :])
    assert await projection.catch_up() == sum(len(s) - len(s) // 2 for s in cohort)
    assert await projection.catch_up() == 0  # nothing new: nothing read
    incremental = await rows(pool)
    assert {s: r[2] for s, r in incremental.items()} == expected(cohort)
    assert {r[0] for r in incremental.values()} >= {len(s) for s in cohort}
    total = sum(len(s) for s in cohort)
    assert await projection.checkpoint() == await pool.fetchval("SELECT max(global_position) FROM events")
    assert await OutcomeProjection(pool, batch_size=1000).rebuild() == total
    assert await rows(pool) == incremental


async def test_two_catch_ups_at_once_count_each_event_once(
    pool: asyncpg.Pool, cohort: list[list[EventEnvelope]]
) -> None:
    store = PostgresEventStore(pool)
    await seed(store, cohort)
    first, second = OutcomeProjection(pool, batch_size=5), OutcomeProjection(pool, batch_size=3)
    read = await asyncio.gather(first.catch_up(), second.catch_up(), first.catch_up())
    assert sum(read) == sum(len(s) for s in cohort)  # every event read by exactly one of them
    assert {s: r[2] for s, r in (await rows(pool)).items()} == expected(cohort)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shuffle=st.randoms(use_true_random=False),
    batch_size=st.integers(min_value=1, max_value=40),
    longest_append=st.integers(min_value=1, max_value=8),
    catch_up_every=st.integers(min_value=1, max_value=6),
)
async def test_any_interleaving_of_appends_and_catch_ups_folds_the_same(  # noqa: PLR0917 - hypothesis's
    pool: asyncpg.Pool,
    cohort: list[list[EventEnvelope]],
    shuffle: random.Random,
    batch_size: int,
    longest_append: int,
    catch_up_every: int,
) -> None:
    """Streams appended in random chunks, in random order; catch-ups at random moments, some while
    appends are in flight and some two at a time: the rows always end as the pure fold of each
    stream, and as a rebuild from zero."""
    await pool.execute("TRUNCATE events, course_summaries, course_outcomes")
    await pool.execute("UPDATE projection_checkpoints SET global_position = 0")
    store, projection = PostgresEventStore(pool), OutcomeProjection(pool, batch_size=batch_size)
    written = dict.fromkeys(range(len(cohort)), 0)
    step = 0
    while any(written[i] < len(cohort[i]) for i in written):
        index = shuffle.choice([i for i in written if written[i] < len(cohort[i])])
        stream, start = cohort[index], written[index]
        chunk = stream[start : start + shuffle.randint(1, longest_append)]
        append = store.append(stream[0].stream_id, start, chunk)
        step += 1
        if step % catch_up_every == 0:
            catch_ups = [projection.catch_up() for _ in range(shuffle.randint(1, 2))]
            await asyncio.gather(append, *catch_ups)
        else:
            await append
        written[index] += len(chunk)
    await projection.catch_up()
    incremental = await rows(pool)
    assert {s: r[2] for s, r in incremental.items()} == expected(cohort)
    await projection.rebuild()
    assert await rows(pool) == incremental


async def test_a_report_read_is_recorded_and_refused_to_nurses(
    pool: asyncpg.Pool, cohort: list[list[EventEnvelope]]
) -> None:
    reports = OutcomeReports(pool, "api")
    now = datetime.now(UTC)
    empty = await reports.outcomes(story.PRESCRIBER, now)
    assert empty.courses == 0  # an empty clinic: said plainly, nothing fails
    await seed(PostgresEventStore(pool), cohort)
    report = await reports.outcomes(story.OPERATIONS, now)  # caught up on the read itself
    assert report.courses == len(HAND_COHORT) and report.overall.responders == 6
    with pytest.raises(ReadRefused) as refused:
        await reports.outcomes(story.NURSE, now)
    assert refused.value.code == "report_not_permitted"
    reads = await AccessLog(pool).reports_read()
    assert [(r.staff_id, r.what, r.channel) for r in reads] == [
        (story.PRESCRIBER.id, "report_outcomes", "api"),
        (story.OPERATIONS.id, "report_outcomes", "api"),
    ]
    with pytest.raises(asyncpg.CheckViolationError):  # only a report's read may name no course
        await pool.execute(
            "INSERT INTO access_log (staff_id, role, course_id, what, channel) "
            "VALUES ('x', 'nurse', NULL, 'view', 'api')"
        )
