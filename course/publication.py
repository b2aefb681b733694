"""What a clinic may publish as its course policy, and the canonical body its hash is taken over.

`CoursePolicy` alone accepts what tests and benchmarks need (a one-second "day", a threshold of
300/200); a policy real patients' courses open on is held to clinical bounds as well. Pure: the
store (api/policies.py) and both edges (`course policy publish`, `POST /policies`) share it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from course.commands import Actor, RecordConsent, RecordMaintenancePlan, Role, Route
from course.policy import CoursePolicy, MonitoringPolicy, OutcomePolicy

POLICY_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_POLICY_NAME = re.compile(POLICY_NAME_PATTERN)
DEFAULT_POLICY_NAME = "default"
# Versions are PostgreSQL integers: a larger one names nothing, and is refused before the query.
MAX_POLICY_VERSION = 2**31 - 1

# Said wherever a caller tries to hand a course its own policy (`POST /courses`, `course open`).
POLICY_ON_THE_SERVER = (
    "A course cannot bring its own policy: policies are published on the server by a clinic admin "
    "(`course policy publish FILE`, `POST /policies`) and a course opens on one by name and version "
    "(`policy_name`, `policy_version`; both optional: the clinic's current policy)."
)

# A dose is deferred at or above the threshold. Below 120/70 hardly anyone could be dosed; above
# 180/110 (hypertensive urgency) the check no longer protects the patient it exists for.
SYSTOLIC_BOUNDS = (120, 180)
DIASTOLIC_BOUNDS = (70, 110)
# Reminders and deadlines shorter than this are a typo (seconds for minutes), not a clinic's choice.
SHORTEST_DURATION = timedelta(minutes=1)
# A signed step is accepted this long after the API signed it: long enough for a slow network,
# short enough that a copied command cannot be replayed later in the day.
LONGEST_COMMAND_WINDOW = timedelta(hours=1)
_CONSENT_VERSION = re.compile(r"^[A-Za-z0-9._-]+$")


def _upper_bound(metadata: list[Any]) -> int:
    for item in metadata:
        for attribute in ("max_length", "le"):
            if getattr(item, attribute, None) is not None:
                return int(getattr(item, attribute))
    raise AssertionError("no upper bound in the field's metadata")


# A consent records the form it was signed on, and a maintenance plan its interval, within these:
# a policy naming a longer form version or allowing a longer interval could never be satisfied.
LONGEST_CONSENT_VERSION = _upper_bound(RecordConsent.model_fields["form_version"].metadata)
LONGEST_INTERVAL_DAYS = _upper_bound(RecordMaintenancePlan.model_fields["interval_days"].metadata)


class PolicyRefused(Exception):
    """A policy that cannot be published (or found): a stable code, a sentence, and where."""

    def __init__(self, code: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors or []


def publisher_refusal(actor: Actor) -> str | None:
    if actor.role is Role.CLINIC_ADMIN:
        return None
    return (
        f"Staff with the role {actor.role.value} cannot publish a policy; publishing needs: "
        f"{Role.CLINIC_ADMIN.value} (`course staff add ID --role {Role.CLINIC_ADMIN.value}`)."
    )


def opener_refusal(actor: Actor) -> str | None:
    """A clinic admin takes no step on any course, and opening one is the first."""
    if actor.role is not Role.CLINIC_ADMIN:
        return None
    return "A clinic admin publishes policies and takes no part in courses; care-team or operations staff open them."


def check_name(name: str) -> str:
    if not _POLICY_NAME.fullmatch(name):
        raise PolicyRefused(
            "policy_name_invalid",
            "A policy name is lower-case letters, digits and . _ - (up to 64, starting with a letter or digit), "
            "e.g. default or downtown-2026.",
        )
    return name


def for_publication(document: str | bytes | dict[str, Any]) -> CoursePolicy:
    """The policy a clinic admin sent, refused unless every field is known and within bounds."""
    try:
        if isinstance(document, dict):
            policy = CoursePolicy.model_validate(document, extra="forbid")
        else:
            policy = CoursePolicy.model_validate_json(document, extra="forbid")
    except ValidationError as error:
        # Field paths and pydantic's reason, never the input (it echoes values).
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "policy", "problem": str(e["msg"])} for e in error.errors()
        ]
        raise PolicyRefused(
            "policy_invalid",
            "The policy is not valid: fix the fields listed (`GET /openapi.json` has CoursePolicy's schema).",
            errors,
        ) from None
    problems = out_of_bounds(policy)
    if problems:
        raise PolicyRefused(
            "policy_out_of_bounds",
            "The policy is outside what courses may run by: fix the fields listed and publish it again.",
            problems,
        )
    return policy


def out_of_bounds(policy: CoursePolicy) -> list[dict[str, str]]:
    """Every field a clinic's courses could not safely run by, each with why."""
    problems: list[dict[str, str]] = []

    def refuse(field: str, problem: str) -> None:
        problems.append({"field": field, "problem": problem})

    low, high = SYSTOLIC_BOUNDS
    if not low <= policy.bp_threshold.systolic <= high:
        refuse("bp_threshold.systolic", f"must be between {low} and {high} mmHg")
    low, high = DIASTOLIC_BOUNDS
    if not low <= policy.bp_threshold.diastolic <= high:
        refuse("bp_threshold.diastolic", f"must be between {low} and {high} mmHg")
    version = policy.consent_form_version
    if not _CONSENT_VERSION.fullmatch(version) or len(version) > LONGEST_CONSENT_VERSION:
        refuse(
            "consent_form_version",
            "must be the form's version as a consent step records it: letters, digits and . _ - "
            f"(up to {LONGEST_CONSENT_VERSION})",
        )
    if policy.day_length != timedelta(days=1):
        refuse("day_length", "must be P1D: a shorter day is for benchmarks and demonstrations, never patients")
    for field in ("command_window", *_durations()):
        value = getattr(policy, field)
        if value < SHORTEST_DURATION:
            refuse(field, "must be at least one minute (PT1M)")
    if policy.command_window > LONGEST_COMMAND_WINDOW:
        refuse("command_window", "must be at most one hour (PT1H)")
    if policy.maintenance_interval_days.max > LONGEST_INTERVAL_DAYS:
        refuse(
            "maintenance_interval_days.max", f"must be at most {LONGEST_INTERVAL_DAYS}, the longest plan one records"
        )
    if policy.monitoring is not None:
        problems += _monitoring_out_of_bounds(policy.monitoring)
    problems += _outcomes_out_of_bounds(policy.outcomes)
    return problems


# What a clinic's outcome reports may judge by. An MCID below 2 points is within a GAD-7's test-retest
# noise, above 8 no change short of a cure counts; remission is "below 5" in the literature, and a
# clinic may be stricter or looser within a band; fewer than 5 courses in a cohort identifies patients.
OUTCOME_BOUNDS: dict[str, tuple[int, int]] = {"mcid": (2, 8), "remission_below": (3, 10), "minimum_cohort": (5, 100)}


def _outcomes_out_of_bounds(outcomes: OutcomePolicy) -> list[dict[str, str]]:
    return [
        {"field": f"outcomes.{field}", "problem": f"must be between {low} and {high}"}
        for field, (low, high) in OUTCOME_BOUNDS.items()
        if not low <= getattr(outcomes, field) <= high
    ]


# What a clinic's monitoring policy may say (minutes): a patient in the chair is never watched by a
# clock so loose it means nothing, nor by one that cannot be met.
MONITORING_BOUNDS: dict[str, tuple[int, int]] = {
    "first_recheck_after": (10, 120),
    "recheck_every": (10, 60),
    "late_after": (5, 30),
    "escalate_after": (60, 12 * 60),
    "reading_fresh_within": (10, 60),
}
OBSERVATION_BOUNDS = (30, 8 * 60)


def _monitoring_out_of_bounds(monitoring: MonitoringPolicy) -> list[dict[str, str]]:
    problems = []
    low, high = OBSERVATION_BOUNDS
    for route, minimum in monitoring.minimum_observation.items():
        if route not in {r.value for r in Route}:
            problems.append({"field": f"monitoring.minimum_observation.{route}", "problem": "is not a route"})
        elif not timedelta(minutes=low) <= minimum <= timedelta(minutes=high):
            problems.append(
                {"field": f"monitoring.minimum_observation.{route}", "problem": f"must be {low} to {high} minutes"}
            )
    for field, (low, high) in MONITORING_BOUNDS.items():
        value = getattr(monitoring, field)
        if not timedelta(minutes=low) <= value <= timedelta(minutes=high):
            problems.append({"field": f"monitoring.{field}", "problem": f"must be {low} to {high} minutes"})
    longest = max(monitoring.minimum_observation.values(), default=timedelta(0))
    if monitoring.escalate_after <= longest:
        problems.append(
            {"field": "monitoring.escalate_after", "problem": "must be longer than the longest minimum observation"}
        )
    return problems


def _durations() -> list[str]:
    built_in = CoursePolicy()  # its dump writes durations as text: read the attributes instead
    return [
        name
        for name in CoursePolicy.model_fields
        if isinstance(getattr(built_in, name), timedelta) and name not in ("day_length", "command_window")
    ]


def canonical(policy: CoursePolicy) -> str:
    """Every field, keys sorted, no spaces, ASCII: one text per policy, whatever the file looked like."""
    return json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_of(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()
