"""The `eventsourcing` library's PostgreSQL application, holding a course as one aggregate.

Imported only by bench/append.py, and only when the library is installed (`pip install
'eventsourcing[postgres]'`): it is a yardstick, not a dependency of the service.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event


class CourseStream(Aggregate):
    """One course's events, with the same data and metadata our store writes."""

    @event("Opened")
    def __init__(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.steps = 0

    @event("Recorded")
    def record(self, kind: str, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.steps += 1
