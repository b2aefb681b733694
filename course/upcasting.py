"""Read events written by older schemas: each upcaster lifts one event type by one version.

Stored events are never rewritten; they are upcast on the way in, so a stream written years ago
folds with today's `evolve`. Bump `SCHEMA_VERSION` in course/events.py when an event's meaning or
shape changes in a way old rows cannot satisfy, and add the upcaster from the previous version here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Data = dict[str, Any]
_SESSION_KEY = re.compile(r"^session-(\d+)-reminder-")


def _reminder_facts_v1_to_v2(data: Data) -> Data:
    """Schema 2 added what a reminder is about; a v1 session reminder names its session in its key."""
    found = _SESSION_KEY.match(str(data.get("key", "")))
    return {"session_number": int(found.group(1)) if found else None, "subject_at": None, **data}


UPCASTERS: dict[tuple[str, int], Callable[[Data], Data]] = {
    ("ReminderSent", 1): _reminder_facts_v1_to_v2,
}


def upcast(event_type: str, data: Data, written_as: int, current: int) -> Data:
    for version in range(written_as, current):
        step = UPCASTERS.get((event_type, version))
        if step is not None:
            data = step(data)
    return data
