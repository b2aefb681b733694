"""What staff tools read about courses: the event stream and the visibility rows.

Shared by the `course` CLI and the HTTP API, so both answer with the same shapes.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowExecution

from activities.ports import EventStore
from application.courses import CourseNotFound, parse_course_id
from workflows import search_attributes as sa
from workflows.inputs import workflow_id


async def event_rows(store: EventStore, course_id: str) -> list[dict[str, Any]]:
    """The course's stream as `{version, type, occurred_at, data, metadata}`; CourseNotFound when empty."""
    course = parse_course_id(course_id)
    events = await store.read(workflow_id(course))
    if not events:
        raise CourseNotFound(str(course))
    return [
        {
            "version": e.version,
            "type": e.type,
            "occurred_at": e.occurred_at.isoformat(),
            "data": e.data(),
            "metadata": e.metadata.model_dump(mode="json"),
        }
        for e in events
    ]


def course_row(execution: WorkflowExecution) -> dict[str, Any]:
    """One course as the visibility store sees it: codes and opaque ids only."""
    attrs = execution.typed_search_attributes
    due = attrs.get(sa.NEXT_DUE_AT)
    return {
        "course_id": execution.id.removeprefix("course-"),
        "status": execution.status.name.lower() if execution.status else None,
        "phase": attrs.get(sa.COURSE_PHASE),
        "awaiting": list(attrs.get(sa.AWAITING_STEPS) or []),
        "clinician_id": attrs.get(sa.CLINICIAN_ID),
        "therapist_id": attrs.get(sa.THERAPIST_ID),
        "next_due_at": due.isoformat() if due else None,
        "sessions_completed": attrs.get(sa.DOSING_SESSIONS_COMPLETED),
        "overdue": bool(attrs.get(sa.OVERDUE)),
        "on_hold": bool(attrs.get(sa.ON_HOLD)),
        "needs_review": bool(attrs.get(sa.NEEDS_CLINICAL_REVIEW)),
        "insurance": attrs.get(sa.INSURANCE_STATUS),
    }


async def list_courses(client: Client, query: str, limit: int) -> list[dict[str, Any]]:
    return [course_row(w) async for w in client.list_workflows(query, limit=limit)]
