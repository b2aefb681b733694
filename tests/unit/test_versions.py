"""Rolling deploys: messages tolerate fields a newer version adds; people are held to the schema.

During a deploy an old worker meets update payloads, stored events and snapshots written by a new
one. Refusing a new optional field failed the workflow task in a loop; reading past it is safe,
because a field a version does not know is one its rules do not use. A person who sends a field
the step does not have made a typo (or tried to name the actor): the CLI and the API refuse it.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from cli.main import InvalidInput, cmd_open, cmd_record
from course.commands import STEPS, RecordIntentions, ScheduleSession, StepRequest
from course.events import EventEnvelope, IntentionsRecorded
from course.policy import CoursePolicy
from course.state import CourseState, fold
from tests import story
from tests.clinic import Clinic
from worker.settings import Settings
from workflows.inputs import OpenCourse


def test_an_old_worker_reads_a_step_with_a_field_it_does_not_know() -> None:
    sent = {"command": {"step": "intentions", "goals": "Sleep", "mood_scale": 4}, "actor": story.NURSE.model_dump()}
    request = StepRequest.model_validate_json(json.dumps(sent))
    assert request.command == RecordIntentions(goals="Sleep")


def test_an_old_worker_folds_an_event_stored_with_a_field_it_does_not_know() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    newer = clinic.log[-1]
    stored = EventEnvelope.from_row(
        event_id=newer.event_id,
        stream_id=newer.stream_id,
        version=newer.version,
        type=newer.type,
        data={**newer.data(), "assessed_with": "gad7-v2"},
        metadata={**newer.metadata.model_dump(mode="json"), "deployment": "blue"},
        occurred_at=newer.occurred_at,
    )
    assert stored == newer
    assert fold(None, [*clinic.log[:-1], stored]) == clinic.course
    assert IntentionsRecorded.model_validate({"goals": "x", "type": "IntentionsRecorded", "tone": "calm"})


def test_a_snapshot_or_start_input_from_a_newer_worker_is_read() -> None:
    state = Clinic().course
    snapshot = {
        **state.model_dump(mode="json"),
        "streak": 3,
        "policy": {**state.policy.model_dump(mode="json"), "x": 1},
    }
    assert CourseState.model_validate(snapshot) == state
    opening = story.opening()
    assert OpenCourse.model_validate({**opening.model_dump(mode="json"), "channel": "api"}) == opening


def test_people_are_told_the_schema_has_no_other_fields() -> None:
    for model in [*STEPS.values(), CoursePolicy]:
        assert model.model_json_schema()["additionalProperties"] is False, model.__name__
    with pytest.raises(ValidationError, match="Extra inputs"):
        RecordIntentions.model_validate({"goals": "x", "actor": {"id": "dr-forged"}}, extra="forbid")


def _args(tmp_path: Path, payload: object, **extra: object) -> argparse.Namespace:
    source = tmp_path / "payload.json"
    source.write_text(json.dumps(payload))
    return argparse.Namespace(schema=None, targets=[str(uuid4()), "check-in"], data=str(source), **extra)


async def test_the_cli_refuses_a_field_the_step_does_not_have(tmp_path: Path) -> None:
    vitals = {"systolic": 120, "diastolic": 80, "heart_rate": 70, "spo2": 98}
    payload = {"session_number": 1, "ride_home_arranged": True, "vitals": vitals}
    with pytest.raises(InvalidInput, match=r"'spo2' is not a field of pre-dose vitals"):
        await cmd_record(_args(tmp_path, payload), Settings())


async def test_the_cli_refuses_a_policy_file_at_open_and_says_where_policies_live(tmp_path: Path) -> None:
    source = tmp_path / "policy.json"
    source.write_text('{"bp_threshold": {"systolic": 300, "diastolic": 200}}')
    with pytest.raises(InvalidInput, match=r"published on the server.*course policy publish FILE.*--policy-name"):
        await cmd_open(argparse.Namespace(policy=str(source)), Settings())


def test_a_time_before_year_one_in_utc_is_invalid_input_not_a_crash() -> None:
    with pytest.raises(ValidationError, match="between the years"):
        ScheduleSession.model_validate_json('{"session_number": 1, "scheduled_at": "0001-01-01T01:00:00+05:00"}')
    assert ScheduleSession(session_number=1, scheduled_at=datetime(2030, 1, 1, tzinfo=UTC))
