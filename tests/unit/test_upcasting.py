"""A stream written by the previous event schema still folds with today's code."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from course.events import SCHEMA_VERSION, EventEnvelope, ReminderSent
from course.state import fold
from tests import story
from tests.clinic import Clinic


def _as_rows(envelopes: list[EventEnvelope], schema_version: int) -> list[dict[str, object]]:
    rows = []
    for envelope in envelopes:
        data = envelope.data()
        if envelope.type == "ReminderSent":  # what schema 1 stored: no reminder facts
            data.pop("session_number")
            data.pop("subject_at")
        metadata = envelope.metadata.model_dump(mode="json") | {"schema_version": schema_version}
        rows.append(
            {
                "event_id": envelope.event_id,
                "stream_id": envelope.stream_id,
                "version": envelope.version,
                "type": envelope.type,
                "data": data,
                "metadata": metadata,
                "occurred_at": envelope.occurred_at,
            }
        )
    return rows


def test_a_version_1_session_reminder_is_upcast_with_its_session_number() -> None:
    data = {
        "key": "session-3-reminder-2026-12-01T15:00:00+00:00",
        "purpose": "session_tomorrow",
        "recipient": "patient",
        "due_at": "2026-11-30T15:00:00+00:00",
    }
    metadata = {"actor": {"id": "system", "role": "operations"}, "workflow_id": "w", "run_id": "r", "schema_version": 1}
    envelope = EventEnvelope.from_row(
        event_id=uuid4(),
        stream_id="course-x",
        version=9,
        type="ReminderSent",
        data=data,
        metadata=metadata,
        occurred_at=datetime.now(UTC),
    )
    assert isinstance(envelope.event, ReminderSent)
    assert envelope.event.session_number == 3


def test_a_stream_written_by_schema_1_folds_to_the_same_course() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, story.soon(clinic.now, days=3)))
    clinic.advance(days=2)  # the day-before reminder
    assert SCHEMA_VERSION == 2
    old = [EventEnvelope.from_row(**row) for row in _as_rows(clinic.log, schema_version=1)]  # type: ignore[arg-type]
    assert any(e.type == "ReminderSent" for e in old)
    assert fold(None, old) == clinic.course
