"""The ports the workflow's activities need, and the messages that cross them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from course.commands import InsuranceStatus
from course.events import EventEnvelope


class ConcurrencyError(Exception):
    """A different event already holds this version: retrying cannot help."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventBatch(_Message):
    stream_id: str
    expected_version: int
    events: list[EventEnvelope]


class AppendResult(_Message):
    version: int
    written: int


class EventStore(Protocol):
    async def append(self, stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> AppendResult: ...

    async def read(self, stream_id: str) -> list[EventEnvelope]: ...


class EligibilityRequest(_Message):
    course_id: str
    payer_id: str | None
    member_ref: str | None
    self_pay: bool
    service_type: Literal["MH"] = "MH"


class EligibilityResult(_Message):
    status: InsuranceStatus
    reason: str | None = None


class EligibilityProvider(Protocol):
    async def check(self, request: EligibilityRequest) -> EligibilityResult: ...


class Notification(_Message):
    idempotency_key: str
    stream_id: str
    purpose: str
    recipient: Literal["patient", "clinician", "therapist", "operations"]
    recipient_id: str | None
    due_at: AwareDatetime


class DeliveryResult(_Message):
    delivered: bool
    duplicate: bool


class Outbox(Protocol):
    async def record(self, notification: Notification) -> bool:
        """Store the notification; False if its key was already delivered."""
        ...

    async def mark_delivered(self, key: str, channel: str, at: datetime) -> None: ...


class Channel(Protocol):
    name: str

    async def deliver(self, notification: Notification) -> None: ...


# Activity names: the workflow calls them by name so its sandbox never imports asyncpg.
APPEND_EVENTS = "append_events"
CHECK_ELIGIBILITY = "check_eligibility"
SEND_NOTIFICATION = "send_notification"
