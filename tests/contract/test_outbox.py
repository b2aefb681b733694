"""One contract, every outbox: in memory and PostgreSQL keep the same delivery state machine.

pending → sending (one claim) → delivered | failed (claimable again) | undeliverable |
delivery_uncertain (an attempt vanished mid-send: never claimable again).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio

from activities.notifications import InMemoryOutbox, PostgresOutbox
from activities.ports import DeliveryStatus, Notification, Outbox

SENDING, DELIVERED, FAILED = DeliveryStatus.SENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED
UNCERTAIN, UNDELIVERABLE = DeliveryStatus.DELIVERY_UNCERTAIN, DeliveryStatus.UNDELIVERABLE


@pytest_asyncio.fixture(params=["memory", "postgres"])
async def outbox(request: pytest.FixtureRequest, pg_pool: asyncpg.Pool) -> AsyncIterator[Outbox]:
    yield InMemoryOutbox() if request.param == "memory" else PostgresOutbox(pg_pool)


def reminder() -> Notification:
    course = f"course-{uuid4()}"
    return Notification(
        idempotency_key=f"{course}:session-1-reminder",
        stream_id=course,
        purpose="session_tomorrow",
        recipient="patient",
        recipient_id="pt-0001",
        due_at=datetime(2026, 11, 30, 15, tzinfo=UTC),
    )


def claim_id() -> str:
    return str(uuid4())


async def test_a_delivered_reminder_is_never_claimed_again(outbox: Outbox) -> None:
    note, first = reminder(), claim_id()
    assert (await outbox.claim(note, first)).status is SENDING
    await outbox.mark_delivered(note.idempotency_key, "smtp", datetime.now(UTC), claim_id=first, message_id="<m@x>")
    again = await outbox.claim(note, claim_id())
    assert (again.status, again.attempts) == (DELIVERED, 1)


async def test_a_refused_delivery_can_be_claimed_by_the_retry(outbox: Outbox) -> None:
    note, first, second = reminder(), claim_id(), claim_id()
    await outbox.claim(note, first)
    await outbox.mark_failed(note.idempotency_key, first, FAILED, "smtp_rcpt_451", channel="smtp")
    retry = await outbox.claim(note, second)
    assert (retry.status, retry.attempts) == (SENDING, 2)
    await outbox.mark_delivered(note.idempotency_key, "smtp", datetime.now(UTC), claim_id=second)
    assert (await outbox.claim(note, claim_id())).status is DELIVERED


async def test_an_attempt_that_vanished_mid_send_makes_the_reminder_uncertain_for_good(outbox: Outbox) -> None:
    note, lost = reminder(), claim_id()
    await outbox.claim(note, lost)  # ...and the worker dies while sending
    assert (await outbox.claim(note, claim_id())).status is UNCERTAIN
    assert (await outbox.claim(note, claim_id())).status is UNCERTAIN  # still not resent


async def test_the_original_attempt_may_still_settle_an_uncertain_reminder(outbox: Outbox) -> None:
    note, slow, retry = reminder(), claim_id(), claim_id()
    await outbox.claim(note, slow)
    await outbox.claim(note, retry)  # the retry gives up on it: uncertain
    await outbox.mark_failed(note.idempotency_key, retry, FAILED, "not mine")  # a stranger's claim changes nothing
    assert (await outbox.claim(note, claim_id())).status is UNCERTAIN
    await outbox.mark_delivered(note.idempotency_key, "smtp", datetime.now(UTC), claim_id=slow)
    assert (await outbox.claim(note, claim_id())).status is DELIVERED


async def test_an_undeliverable_reminder_stays_undeliverable(outbox: Outbox) -> None:
    note, first = reminder(), claim_id()
    await outbox.claim(note, first)
    await outbox.mark_failed(note.idempotency_key, first, UNDELIVERABLE, "no_address")
    assert (await outbox.claim(note, claim_id())).status is UNDELIVERABLE


async def test_concurrent_attempts_for_one_reminder_get_one_claim(outbox: Outbox) -> None:
    note = reminder()
    claims = await asyncio.gather(*(outbox.claim(note, claim_id()) for _ in range(8)))
    assert [c.status for c in claims].count(SENDING) == 1
    assert {c.status for c in claims} <= {SENDING, UNCERTAIN}
