"""A course opened with a payer asks the clearinghouse, through Temporal, on the real stack.

Given an insured patient, when the course opens and the clearinghouse first answers 503, then
Temporal retries and the course records the payer's answer; a payer rejection is recorded at
once as unknown with its reason; the member id never shows in history, search attributes or logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from activities.x12 import X12HttpProvider
from application.courses import CourseClient
from course.commands import PatientShare
from tests import story
from tests.clearinghouse import Clearinghouse, Reply, running_clearinghouse
from tests.conftest import task_queue
from tests.contract import x12_recorded as recorded
from tests.contract.x12_recorded import MEMBER
from worker.main import activities_for, build_worker
from workflows import search_attributes as sa
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: CourseClient
    store: PostgresEventStore
    house: Clearinghouse


@pytest.fixture
def clearinghouse() -> Iterator[Clearinghouse]:
    with running_clearinghouse() as house:
        yield house


@pytest_asyncio.fixture
async def stack(
    dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, clearinghouse: Clearinghouse
) -> AsyncIterator[Stack]:
    store, queue = PostgresEventStore(pg_pool), task_queue()
    provider = X12HttpProvider(clearinghouse.url, "1999999984", timeout=2.0)
    worker = build_worker(
        dev_env.client, queue, activities_for(store, provider, PostgresOutbox(pg_pool), ConsoleChannel())
    )
    try:
        async with worker:
            yield Stack(dev_env, CourseClient(dev_env.client, queue), store, clearinghouse)
    finally:
        await provider.aclose()


async def insured_course(stack: Stack, member: str) -> str:
    opening = story.opening(self_pay=False).model_copy(update={"payer_id": "87726", "member_ref": member})
    return str(await stack.client.open(opening))


async def eligibility_event(stack: Stack, course: str, within: float = 20.0) -> dict[str, object]:
    for _ in range(int(within / 0.1)):
        events = await stack.store.read(workflow_id(course))
        checked = [e for e in events if e.type == "EligibilityChecked"]
        if checked:
            return checked[0].data()
        await asyncio.sleep(0.1)
    raise AssertionError("eligibility never recorded")


async def history_bytes(stack: Stack, course: str) -> bytes:
    history = await stack.env.client.get_workflow_handle(workflow_id(course)).fetch_history()
    return b"".join(e.SerializeToString() for e in history.events)


async def test_a_clearinghouse_503_is_retried_and_the_course_records_the_coverage(stack: Stack) -> None:
    stack.house.script(MEMBER, Reply(503, {"message": "payer timeout"}), Reply(200, recorded.ACTIVE_WITH_COPAY))
    with capture_logs() as logs:
        course = await insured_course(stack, MEMBER)
        checked = await eligibility_event(stack, course)

    assert (checked["status"], checked["reason"], checked["in_network"]) == ("covered", "active_coverage", True)
    assert stack.house.served[MEMBER] == 2  # the 503, then the answer
    view = await stack.client.status(course)
    # What the patient pays, for the financial clearance: stored with the fact and on the view.
    share = PatientShare(
        copay=Decimal("30"),
        coinsurance_rate=Decimal("0.2"),
        deductible_remaining=Decimal("250.00"),
        out_of_pocket_remaining=Decimal("2100"),
    )
    assert PatientShare.model_validate(checked["patient_share"]) == share
    assert (view.insurance, view.in_network, view.patient_share) == ("covered", True, share)
    description = await stack.env.client.get_workflow_handle(workflow_id(course)).describe()
    assert description.typed_search_attributes.get(sa.INSURANCE_STATUS) == "covered"
    # The member id went to the clearinghouse, and nowhere else in clear.
    assert MEMBER.encode() not in await history_bytes(stack, course)
    assert MEMBER not in str(description.typed_search_attributes) and MEMBER not in repr(logs)


async def test_a_payer_rejection_is_recorded_at_once_as_unknown_with_its_reason(stack: Stack) -> None:
    member = "W000-0000-00"
    stack.house.script(member, Reply(200, recorded.rejection("72", "Invalid/Missing Subscriber/Insured ID")))
    course = await insured_course(stack, member)
    checked = await eligibility_event(stack, course, within=10.0)

    assert (checked["status"], checked["reason"]) == ("unknown", "aaa_72_invalid_member_id")
    assert stack.house.served[member] == 1  # not retried: the payer's answer is final
    assert member.encode() not in await history_bytes(stack, course)
