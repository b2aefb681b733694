"""Request ids for commands sent without one: the same command again is the same request."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from uuid import UUID

from course.commands import Actor, ClinicianCommand


def derived_request_id(course: UUID, command: ClinicianCommand, actor: Actor, when: str = "") -> str:
    """The request id of a command sent without one: the same course, step, payload and actor
    (and, for steps that can recur, the same occasion; course/repeats.py) give the same id, so a
    command sent again is applied once. The payload is canonical (sorted keys, compact, times in
    UTC) and hashed: no payload text reaches Temporal's update id."""
    payload = json.dumps(command.model_dump(), sort_keys=True, separators=(",", ":"), default=_canonical)
    text = "\n".join([str(course), command.step, payload, actor.id, actor.role.value, when])
    return f"{command.step}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)
