"""Integration psychotherapy: sessions held (never in the future), each once."""

from __future__ import annotations

from datetime import datetime

from course.commands import RecordIntegrationSession
from course.errors import require
from course.events import DomainEvent, IntegrationSessionRecorded
from course.phases.common import CLOCK_SKEW, in_phase
from course.rules import integration_already_recorded
from course.state import CourseState, Phase


def integration_session(state: CourseState, command: RecordIntegrationSession, now: datetime) -> list[DomainEvent]:
    in_phase(state, "integration-session", Phase.DOSING, Phase.INTEGRATION, Phase.MAINTENANCE)
    require(
        command.held_at <= now + CLOCK_SKEW,
        "held_in_future",
        "An integration session cannot be recorded before it has been held.",
    )
    require(
        not integration_already_recorded(state, command.modality, command.held_at),
        "already_recorded",
        "An integration session of this modality at this time is already recorded for this course.",
    )
    return [IntegrationSessionRecorded(**command.model_dump(exclude={"step"}))]
