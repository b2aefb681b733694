"""Every model that crosses Temporal or PostgreSQL reads back exactly what was written.

`model_validate_json(m.model_dump_json()) == m` for the commands, StepRequest, every domain event
and its envelope, CourseState, CoursePolicy, OpenCourse, the activity messages and CourseView.
Instances are drawn from each model's own fields and constraints (bounds, lengths, patterns), so
a field added tomorrow is covered without touching this file. Times are drawn in any zone the
tz database knows, historical second offsets included: the fields a caller fills in are
normalised to UTC (course/commands.py: UtcDatetime), so they read back equal; fields the course
fills in itself (workflow.now(), PostgreSQL timestamptz, times copied from events) are drawn in
UTC or whole-minute offsets, the only ones pydantic's JSON keeps.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, AwareDatetime, BaseModel, PlainSerializer, ValidationError
from pydantic.fields import FieldInfo

from activities import ports
from course import commands
from course.commands import STEPS, BloodPressure, RecordDosingPlan, StepRequest, _in_utc
from course.events import DomainEvent, EventEnvelope, EventMetadata, _Event
from course.policy import MAX_DURATION, CoursePolicy, IntervalBounds
from course.state import CourseState
from course.view import CourseView
from interop import bulk
from workflows.inputs import OpenCourse

EVENTS: list[type[BaseModel]] = list(get_args(get_args(DomainEvent)[0]))
# Every activity message, today's and any added later.
MESSAGES: list[type[BaseModel]] = ports._Message.__subclasses__()
MODELS: list[type[BaseModel]] = [
    *STEPS.values(),
    commands.RecordEligibility,
    commands.Tick,
    StepRequest,
    *EVENTS,
    EventMetadata,
    EventEnvelope,
    CourseState,
    CoursePolicy,
    OpenCourse,
    *MESSAGES,
    CourseView,
    # The bulk FHIR export's workflow input, activity messages and progress (interop/bulk.py).
    bulk.BulkExportRequest,
    bulk.ExportBatch,
    bulk.ExportPlan,
    bulk.Checkpoint,
    bulk.ExportProgress,
]

# Whole-minute offsets: what pydantic's JSON can carry for a time that is not normalised.
_MINUTE_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# Years 2..9998: a zone's offset may move an instant across year 1 or 9999, which no datetime holds.
_WALL_TIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    return found


def _numbers(kind: Callable[..., st.SearchStrategy[Any]], bounds: dict[str, Any], **options: Any) -> Any:
    low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
    strategy = kind(min_value=low, max_value=high, **options)
    return strategy.filter(
        lambda n: ("gt" not in bounds or n > bounds["gt"]) and ("lt" not in bounds or n < bounds["lt"])
    )


def _text(bounds: dict[str, Any]) -> st.SearchStrategy[str]:
    shortest, longest = bounds.get("min_length", 0), min(bounds.get("max_length", 80), 80)
    if "pattern" in bounds:
        return st.from_regex(bounds["pattern"], fullmatch=True).filter(lambda s: shortest <= len(s) <= longest)
    return st.text(min_size=shortest, max_size=longest)


def values(tp: Any, metadata: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    """Values of an annotation as pydantic would accept them, within its constraints."""
    meta = list(metadata)
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        for item in extra:
            meta += item.metadata if isinstance(item, FieldInfo) else [item]
        return values(base, tuple(meta))
    if origin in (Union, types.UnionType):
        return st.one_of([values(arg, metadata) for arg in get_args(tp)])
    if tp is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    bounds = _bounds(meta)
    if origin is list:
        (item,) = get_args(tp)
        longest = min(bounds.get("max_length", 3), 3)
        return st.lists(values(item), min_size=bounds.get("min_length", 0), max_size=longest)
    if origin is tuple:
        return st.tuples(*(values(arg) for arg in get_args(tp)))
    if origin is dict:
        key, value = get_args(tp)
        return st.dictionaries(values(key), values(value), max_size=3)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return instances(tp)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _numbers(st.integers, bounds)
    if tp is float:
        return _numbers(st.floats, bounds, allow_nan="ge" not in bounds and "gt" not in bounds)
    if tp is Decimal:
        return _numbers(st.decimals, bounds, allow_nan=False, allow_infinity=False, places=4)
    if tp is str:
        return _text(bounds)
    if tp is UUID:
        return st.uuids()
    if tp is timedelta:
        if any(isinstance(item, PlainSerializer) for item in meta):  # course.policy.Duration
            return st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION)
        return st.timedeltas(min_value=-MAX_DURATION, max_value=MAX_DURATION)
    if tp in (AwareDatetime, datetime):
        normalised = any(isinstance(item, AfterValidator) and item.func is _in_utc for item in meta)
        zones = st.timezones() | _MINUTE_OFFSETS if normalised else st.just(UTC) | _MINUTE_OFFSETS
        return st.builds(lambda wall, zone: wall.replace(tzinfo=zone), _WALL_TIMES, zones)
    if tp is Any:  # JSON values (EventMetadata.command): what JSON round-trips exactly
        return st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5)
    raise NotImplementedError(f"no strategy for {tp!r}")  # a new field type: teach `values` about it


def _ordered(low: Any, high: Any) -> tuple[Any, Any]:
    return (low, high) if low <= high else (high, low)


def _in_order(low: str, high: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def order(fields: dict[str, Any]) -> dict[str, Any]:
        if low not in fields or high not in fields:
            return fields
        first, second = _ordered(fields[low], fields[high])
        return {**fields, low: first, high: second}

    return order


def _build(model: type[BaseModel], fields: dict[str, Any]) -> BaseModel | None:
    try:
        return model.model_validate(fields)
    except ValidationError:
        return None  # the model's own cross-field rules refused the draw: draw again


@cache
def instances(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    fields = {n: (values(f.annotation, tuple(f.metadata)), f.is_required()) for n, f in model.model_fields.items()}
    drawn = st.fixed_dictionaries(
        {name: strategy for name, (strategy, required) in fields.items() if required},
        optional={name: strategy for name, (strategy, required) in fields.items() if not required},
    )
    # Pairs a model requires in order are drawn in order, so few draws are thrown away.
    if issubclass(model, BloodPressure):
        drawn = drawn.map(lambda f: {**f, "systolic": max(f["systolic"], f["diastolic"] + 1)})
    if model is RecordDosingPlan:
        drawn = drawn.map(_in_order("starting_dose_mg_per_kg", "max_dose_mg_per_kg"))
    if model is IntervalBounds:
        drawn = drawn.map(_in_order("min", "max"))
    if model is CoursePolicy:
        drawn = drawn.map(_coherent_policy)
    return drawn.map(lambda f: _build(model, f)).filter(lambda m: m is not None)  # type: ignore[return-value]


def _coherent_policy(fields: dict[str, Any]) -> dict[str, Any]:
    defaults = CoursePolicy()
    for reminder, deadline in [
        ("assessment_reminder_after", "assessment_deadline"),
        ("preparation_reminder_after", "preparation_deadline"),
        ("integration_reminder_after", "integration_due_within"),
    ]:
        early = fields.get(reminder, getattr(defaults, reminder))
        late = fields.get(deadline, getattr(defaults, deadline))
        early, late = _ordered(early, late)
        fields = {**fields, reminder: early, deadline: late + timedelta(microseconds=1) if early == late else late}
    return fields


ROUND_TRIP = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.differing_executors],
)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
@ROUND_TRIP
@given(data=st.data())
def test_what_is_written_reads_back_equal(model: type[BaseModel], data: st.DataObject) -> None:
    written = data.draw(instances(model), label=model.__name__)
    assert model.model_validate_json(written.model_dump_json()) == written


def test_every_domain_event_and_every_activity_message_is_covered() -> None:
    assert set(EVENTS) == set(_Event.__subclasses__())
    assert {ports.EventBatch, ports.EligibilityResult, ports.Notification, ports.OutgoingMessage} <= set(MESSAGES)


@given(zone=st.timezones(), wall=_WALL_TIMES)
@settings(max_examples=100)
def test_a_time_sent_in_any_zone_is_stored_as_the_same_instant_in_utc(zone: Any, wall: datetime) -> None:
    sent = wall.replace(tzinfo=zone)
    scheduled = commands.ScheduleSession(session_number=1, scheduled_at=sent)
    assert scheduled.scheduled_at == sent and scheduled.scheduled_at.tzinfo is UTC
    assert scheduled.model_dump_json().count("+00:00") == 0 and scheduled.model_dump_json().endswith('Z"}')
