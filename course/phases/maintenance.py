"""Maintenance: a plan (sessions every N days, or none, which completes the course) and its sessions."""

from __future__ import annotations

from datetime import datetime

from course.commands import MaintenanceKind, RecordMaintenancePlan, RecordMaintenanceSession
from course.errors import require
from course.events import CourseClosed, DomainEvent, MaintenancePlanRecorded, MaintenanceSessionRecorded
from course.phases.common import CLOCK_SKEW, in_phase
from course.rules import maintenance_already_recorded
from course.state import CourseState, Phase


def maintenance_plan(state: CourseState, command: RecordMaintenancePlan, now: datetime) -> list[DomainEvent]:
    in_phase(state, "maintenance-plan", Phase.INTEGRATION, Phase.MAINTENANCE)
    require(
        not state.review_required,
        "review_required",
        "A prescriber must record the pending clinical review before the maintenance plan.",
    )
    require(
        state.post_series_integration_sessions > 0,
        "integration_required",
        "At least one integration session after the dosing series is needed before the maintenance plan.",
    )
    if command.kind is MaintenanceKind.NONE:
        return [
            MaintenancePlanRecorded(kind=command.kind, interval_days=None, next_due_at=None),
            CourseClosed(outcome="completed", reasons=["no_maintenance"]),
        ]
    bounds = state.policy.maintenance_interval_days
    assert command.interval_days is not None
    require(
        bounds.min <= command.interval_days <= bounds.max,
        "interval_out_of_range",
        f"The maintenance interval must be between {bounds.min} and {bounds.max} days.",
    )
    due = now + state.policy.day_length * command.interval_days
    return [MaintenancePlanRecorded(kind=command.kind, interval_days=command.interval_days, next_due_at=due)]


def maintenance_session(state: CourseState, command: RecordMaintenanceSession, now: datetime) -> list[DomainEvent]:
    in_phase(state, "maintenance-session", Phase.MAINTENANCE)
    require(
        command.held_at <= now + CLOCK_SKEW,
        "held_in_future",
        "A maintenance session cannot be recorded before it has been held.",
    )
    require(
        not maintenance_already_recorded(state, command.held_at),
        "already_recorded",
        "A maintenance session at this time is already recorded for this course.",
    )
    assert state.maintenance_interval_days is not None
    next_due = command.held_at + state.policy.day_length * state.maintenance_interval_days
    return [
        MaintenanceSessionRecorded(kind=command.kind, held_at=command.held_at, gad7=command.gad7, next_due_at=next_due)
    ]
