"""Per-clinic course policy: the durations and thresholds the rules and timers use."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, model_validator

from course.messages import AS_PEOPLE_SEND_IT, BETWEEN_VERSIONS

_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


# No clinical wait is longer; beyond it `now + duration` can overflow a datetime inside the
# workflow, which would fail its task instead of refusing the policy up front.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: Any) -> timedelta:
    """Accept an ISO-8601 duration ("P7D", "PT24H"), a number of seconds, or a timedelta."""
    try:
        duration = _parse_duration(value)
    except OverflowError:
        duration = timedelta.max
    if duration > MAX_DURATION:
        raise ValueError("a duration cannot exceed ten years (P3650D)")
    return duration


def _parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, bool):
        raise ValueError("a duration must be ISO-8601 (e.g. P7D) or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _ISO_DURATION.match(value.strip().upper())
        if match and value.strip().upper() not in ("P", "PT"):
            return _from_parts(match.groupdict())
        try:
            return _parse_duration(float(value))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a duration: use ISO-8601 (e.g. P7D, PT24H) or seconds")


def _from_parts(parts: dict[str, str | None]) -> timedelta:
    # Seconds as a Decimal, not a float: "PT0.000001S" must read back as exactly one microsecond,
    # and a float of a large second count (PT1234567.000001S) cannot hold every microsecond.
    seconds = Decimal(parts["seconds"] or 0)
    whole = int(seconds)
    micro = int(((seconds - whole) * 1_000_000).to_integral_value())
    return timedelta(
        weeks=int(parts["weeks"] or 0),
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=whole,
        microseconds=micro,
    )


def format_duration(value: timedelta) -> str:
    """Exact ISO-8601 (`P14DT12H`, `PT0.000001S`) that `parse_duration` reads back unchanged.

    Whole days stay `P7D`, as policies stored in events and snapshots have always had them.
    """
    if value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"P{value.days}D" if value.days or not (hours or minutes or seconds or value.microseconds) else "P"
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or value.microseconds:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        time += f"{seconds}{fraction}S"
    return f"{text}T{time}" if time else text


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class BloodPressureThreshold(BaseModel):
    model_config = AS_PEOPLE_SEND_IT

    systolic: int = Field(160, ge=60, le=300)
    diastolic: int = Field(100, ge=30, le=200)


class IntervalBounds(BaseModel):
    model_config = AS_PEOPLE_SEND_IT

    min: int = Field(30, ge=1)
    max: int = Field(365, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntervalBounds:
        if self.min > self.max:
            raise ValueError("maintenance_interval_days.min must not exceed max")
        return self


class MonitoringPolicy(BaseModel):
    """The hours after a dose (issue 18; course/phases/monitoring.py): how long a patient stays, how
    often blood pressure is rechecked, and what must be true before discharge. Defaults follow the
    esketamine monitoring programme clinics use as their reference (../shared/CLINICAL-REFERENCE.md):
    blood pressure about 40 minutes after the dose, observation for at least 2 hours. Not yet part
    of CoursePolicy: it joins it with the monitored steps."""

    model_config = AS_PEOPLE_SEND_IT

    # Per route: clinics set their own minimum, so it is policy, not code.
    minimum_observation: dict[str, Duration] = Field(
        default_factory=lambda: {
            "iv_infusion": timedelta(minutes=120),
            "im_injection": timedelta(minutes=120),
            "intranasal": timedelta(minutes=120),
            "oral_lozenge": timedelta(minutes=120),
        }
    )
    discharge_bp_threshold: BloodPressureThreshold = BloodPressureThreshold()
    first_recheck_after: Duration = timedelta(minutes=40)
    recheck_every: Duration = timedelta(minutes=30)  # while the last reading is at or above the threshold
    late_after: Duration = timedelta(minutes=10)  # a recheck this late flags the course
    escalate_after: Duration = timedelta(hours=4)  # not discharged by then: the prescriber is told
    reading_fresh_within: Duration = timedelta(minutes=30)  # discharge needs a reading this recent
    spo2_minimum: int = Field(94, ge=80, le=100)
    # MOAA/S 5: responds readily to name spoken in a normal tone, i.e. fully alert.
    alert_sedation_score: int = Field(5, ge=0, le=5)

    def minimum_for(self, route: str) -> timedelta:
        return self.minimum_observation.get(route, max(self.minimum_observation.values(), default=timedelta(hours=2)))


class OutcomePolicy(BaseModel):
    """How the clinic's outcome reports judge a course and protect its patients (course/cohorts.py).

    GAD-7 (../shared/CLINICAL-REFERENCE.md): a drop of about 4 points is the minimal clinically
    important difference (Toussaint et al. 2020), and a score below 5 is commonly taken as remission.
    A cohort of fewer than `minimum_cohort` courses is suppressed in every report: a figure resting on
    two patients describes those two patients."""

    model_config = AS_PEOPLE_SEND_IT

    mcid: int = Field(4, ge=1, le=21)
    remission_below: int = Field(5, ge=1, le=21)
    minimum_cohort: int = Field(5, ge=1, le=1000)


class CoursePolicy(BaseModel):
    """Defaults are the clinic's; tests and benchmarks shrink the durations."""

    # Written by people (`course policy publish`), then carried in CourseOpened and every snapshot.
    model_config = AS_PEOPLE_SEND_IT

    consent_form_version: str = "2026-01"
    bp_threshold: BloodPressureThreshold = BloodPressureThreshold()
    assessment_reminder_after: Duration = timedelta(days=7)
    assessment_deadline: Duration = timedelta(days=30)
    preparation_reminder_after: Duration = timedelta(days=14)
    preparation_deadline: Duration = timedelta(days=60)
    session_reminder_lead: Duration = timedelta(hours=24)
    clearance_reminder_after: Duration = timedelta(days=3)
    integration_reminder_after: Duration = timedelta(days=3)
    integration_due_within: Duration = timedelta(days=7)
    integration_gap_reminder: Duration = timedelta(days=14)
    maintenance_interval_days: IntervalBounds = IntervalBounds()
    maintenance_reminder_lead: Duration = timedelta(days=14)
    maintenance_grace: Duration = timedelta(days=30)
    gad7_review_threshold: int = Field(10, ge=0, le=21)
    max_planned_sessions: int = Field(12, ge=1, le=52)
    # Seconds per "maintenance day": lets a benchmark or demo run a 90-day interval in minutes.
    # The clinic never sets it; it exists so interval_days stays the clinical unit everywhere.
    day_length: Duration = timedelta(days=1)
    # The hours after a dose (course/phases/monitoring.py). None: the dose is one `dosing-session`
    # step, as for every course before monitoring existed; a clinic turns it on by publishing a
    # policy with `"monitoring": {}` (the defaults) or its own values.
    monitoring: MonitoringPolicy | None = None
    # Check-in and the dose are refused earlier than this before the session's scheduled time: a
    # step recorded hours early is a wrong course, a wrong session number or a wrong clock.
    session_opens_before: Duration = timedelta(hours=2)
    # How long a signed step stays acceptable after the clinic's API signed it: a copied or
    # delayed command is refused after this.
    command_window: Duration = timedelta(minutes=5)
    # The clinic's outcome reports (course/cohorts.py). Read from the clinic's current policy when a
    # report is made, never from a course's: a course carries it only because it carries the policy.
    outcomes: OutcomePolicy = OutcomePolicy()

    @model_validator(mode="after")
    def _coherent(self) -> CoursePolicy:
        if self.assessment_reminder_after >= self.assessment_deadline:
            raise ValueError("assessment_reminder_after must be shorter than assessment_deadline")
        if self.preparation_reminder_after >= self.preparation_deadline:
            raise ValueError("preparation_reminder_after must be shorter than preparation_deadline")
        if self.integration_reminder_after >= self.integration_due_within:
            raise ValueError("integration_reminder_after must be shorter than integration_due_within")
        return self


class PolicyRef(BaseModel):
    """Which published policy a course opened on (course/publication.py): its name, its version
    and the sha256 of its canonical body, so anyone can tell the rules a course runs by."""

    model_config = BETWEEN_VERSIONS

    name: str
    version: int
    sha256: str
