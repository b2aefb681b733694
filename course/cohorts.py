"""The clinic's outcome report: its courses' outcomes (course/outcomes.py) aggregated into cohorts.

Pure: the outcomes, the clinic's OutcomePolicy and `now` come in, the report goes out. Every figure
comes with the count it rests on, and no figure rests on fewer than `minimum_cohort` courses:

- a cohort smaller than the minimum is suppressed: no figure and no exact count, only "fewer than N";
- within a breakdown, a suppressed cohort could be recovered by subtracting the others from the
  whole, so more cohorts are suppressed (the smallest shown first) until the suppressed ones
  together hold none or at least the minimum (`suppress`);
- funnel counts and trajectory weeks below the minimum are withheld likewise (0 is shown: nobody).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from statistics import fmean

from pydantic import AwareDatetime, BaseModel, ConfigDict

from course.commands import Route
from course.outcomes import CourseOutcome, Stage
from course.policy import OutcomePolicy

PHASES = ("assessment", "preparation", "dosing", "integration", "maintenance")
# Integration sessions per dose, as the clinic's material puts the question: none, some, one per
# dose, more. Courses without a dose have no ratio and are in no bucket.
PER_DOSE_BUCKETS = ("0", "under 1", "1 to under 2", "2 or more")
NOT_PLANNED = "not planned"
NO_INTEGRATION = "none"
_WEEK = timedelta(weeks=1)


class CohortFigures(BaseModel):
    """One cohort's figures; all None (and `suppressed`) when it holds fewer courses than the minimum."""

    model_config = ConfigDict(frozen=True)

    cohort: str
    suppressed: bool
    courses: int | None
    evaluable: int | None = None  # with a baseline and a GAD-7 after it: the base of every rate below
    baseline_mean: float | None = None
    latest_mean: float | None = None
    change_mean: float | None = None
    responders: int | None = None
    response_rate: float | None = None
    remitters: int | None = None
    remission_rate: float | None = None
    doses_mean: float | None = None
    integration_per_dose_mean: float | None = None
    # Mean days in each phase, over the courses that have left it (and how many those are).
    days_in_phase: dict[str, float] = {}
    left_phase: dict[str, int] = {}


class FunnelStage(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    reached: int | None  # None: withheld (1 to minimum-1 courses)
    lapsed: int | None  # closed as lapsed with this as the furthest stage reached
    withdrawn: int | None


class TrajectoryWeek(BaseModel):
    """Mean GAD-7 in a week since the first dose: each course's last reading of that week."""

    model_config = ConfigDict(frozen=True)

    week: int
    courses: int
    mean: float


class OutcomeReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    generated_at: AwareDatetime
    since: AwareDatetime | None
    thresholds: OutcomePolicy
    courses: int  # in the period; 0 says "no course" plainly (no patient is identified by nothing)
    overall: CohortFigures
    baseline_mean: float | None  # the trajectory's week "baseline", over the weeks' courses
    trajectory: list[TrajectoryWeek]
    funnel: list[FunnelStage]
    by_route: list[CohortFigures]
    by_modality: list[CohortFigures]
    by_integration_per_dose: list[CohortFigures]
    by_opening_month: list[CohortFigures]

    @property
    def breakdowns(self) -> dict[str, list[CohortFigures]]:
        return {
            "route": self.by_route,
            "modality": self.by_modality,
            "integration_per_dose": self.by_integration_per_dose,
            "opening_month": self.by_opening_month,
        }


def outcome_report(
    outcomes: Iterable[CourseOutcome], policy: OutcomePolicy, now: datetime, since: datetime | None = None
) -> OutcomeReport:
    chosen = [o for o in outcomes if since is None or o.opened_at >= since]
    chosen.sort(key=lambda o: o.opened_at)
    minimum = policy.minimum_cohort
    baseline, trajectory = trajectories(chosen, minimum)
    return OutcomeReport(
        generated_at=now,
        since=since,
        thresholds=policy,
        courses=len(chosen),
        overall=suppress([cohort("all courses", chosen, policy)], minimum)[0],
        baseline_mean=baseline,
        trajectory=trajectory,
        funnel=funnel(chosen, minimum),
        by_route=breakdown(chosen, policy, route_of, order=[r.value for r in Route] + [NOT_PLANNED]),
        by_modality=breakdown(chosen, policy, modalities_of),
        by_integration_per_dose=breakdown(chosen, policy, per_dose_of, order=list(PER_DOSE_BUCKETS)),
        by_opening_month=breakdown(chosen, policy, lambda o: [o.opening_month]),
    )


def nothing_to_report(report: OutcomeReport) -> str | None:
    """An empty clinic or an empty period, said plainly (None when there is something to report)."""
    if report.courses:
        return None
    if report.since is None:
        return "No course has been opened in this clinic yet: there is nothing to report."
    return f"No course was opened since {report.since:%Y-%m-%d %H:%M} UTC: there is nothing to report for this period."


def route_of(outcome: CourseOutcome) -> list[str]:
    return [outcome.route.value if outcome.route else NOT_PLANNED]


def modalities_of(outcome: CourseOutcome) -> list[str]:
    """A course is in the cohort of every modality it had a session of (so these may add up to more)."""
    return [m.value for m in outcome.modalities] or [NO_INTEGRATION]


def per_dose_of(outcome: CourseOutcome) -> list[str]:
    ratio = outcome.integration_per_dose
    if ratio is None:
        return []
    if ratio == 0:
        return ["0"]
    if ratio < 1:
        return ["under 1"]
    return ["1 to under 2"] if ratio < 2 else ["2 or more"]


def breakdown(
    outcomes: Sequence[CourseOutcome],
    policy: OutcomePolicy,
    key: Callable[[CourseOutcome], list[str]],
    order: list[str] | None = None,
) -> list[CohortFigures]:
    groups: dict[str, list[CourseOutcome]] = {}
    for outcome in outcomes:
        for label in key(outcome):
            groups.setdefault(label, []).append(outcome)
    labels = [label for label in order if label in groups] if order else sorted(groups)
    return suppress([cohort(label, groups[label], policy) for label in labels], policy.minimum_cohort)


def suppress(cohorts: list[CohortFigures], minimum: int) -> list[CohortFigures]:
    """Hide every cohort under the minimum, then the smallest shown ones until what is hidden adds up
    to nothing or to at least the minimum: no hidden cohort can be recovered by subtraction."""
    hidden = {i for i, c in enumerate(cohorts) if (c.courses or 0) < minimum}
    shown = sorted((i for i in range(len(cohorts)) if i not in hidden), key=lambda i: (cohorts[i].courses or 0, i))
    while hidden and 0 < sum(cohorts[i].courses or 0 for i in hidden) < minimum and shown:
        hidden.add(shown.pop(0))
    return [CohortFigures(cohort=c.cohort, suppressed=True, courses=None) if i in hidden else c
            for i, c in enumerate(cohorts)]  # fmt: skip


def cohort(label: str, outcomes: Sequence[CourseOutcome], policy: OutcomePolicy) -> CohortFigures:
    evaluable = [o for o in outcomes if o.change is not None]
    responders = [o for o in evaluable if -(o.change or 0) >= policy.mcid]
    remitters = [o for o in evaluable if (o.latest or 0) < policy.remission_below]
    dosed = [o for o in outcomes if o.doses]
    durations = phase_days(outcomes)
    return CohortFigures(
        cohort=label,
        suppressed=False,
        courses=len(outcomes),
        evaluable=len(evaluable),
        baseline_mean=_mean([o.baseline for o in evaluable]),
        latest_mean=_mean([o.latest for o in evaluable]),
        change_mean=_mean([o.change for o in evaluable]),
        responders=len(responders),
        response_rate=_rate(len(responders), len(evaluable)),
        remitters=len(remitters),
        remission_rate=_rate(len(remitters), len(evaluable)),
        doses_mean=_mean([o.doses for o in dosed]),
        integration_per_dose_mean=_mean([o.integration_per_dose for o in dosed]),
        days_in_phase={phase: round(fmean(days), 1) for phase, days in durations.items()},
        left_phase={phase: len(days) for phase, days in durations.items()},
    )


def phase_days(outcomes: Iterable[CourseOutcome]) -> dict[str, list[float]]:
    """Days spent in each phase, by the courses that left it (for the next phase, or closing)."""
    spent: dict[str, list[float]] = {}
    for outcome in outcomes:
        entered = [(phase, outcome.phases[phase]) for phase in PHASES if phase in outcome.phases]
        ends = [at for _, at in entered[1:]] + [outcome.closed_at]
        for (phase, start), end in zip(entered, ends, strict=True):
            if end is not None:
                spent.setdefault(phase, []).append((end - start).total_seconds() / 86400)
    return {phase: spent[phase] for phase in PHASES if phase in spent}


def funnel(outcomes: Sequence[CourseOutcome], minimum: int) -> list[FunnelStage]:
    def shown(count: int) -> int | None:
        return count if count == 0 or count >= minimum else None

    stages = []
    for stage in Stage:
        at_least = [o for o in outcomes if o.stage >= stage]
        stopped_here = [o for o in at_least if o.stage == stage]
        stages.append(
            FunnelStage(
                stage=stage.label,
                reached=shown(len(at_least)),
                lapsed=shown(sum(o.outcome == "lapsed" for o in stopped_here)),
                withdrawn=shown(sum(o.outcome == "withdrawn" for o in stopped_here)),
            )
        )
    return stages


def trajectories(outcomes: Sequence[CourseOutcome], minimum: int) -> tuple[float | None, list[TrajectoryWeek]]:
    """Weeks since each course's first dose: the mean of each course's last reading in the week,
    for weeks with at least `minimum` courses; and the baseline mean of the courses dosed."""
    weeks: dict[int, dict[int, int]] = {}  # week -> course index -> its last score that week
    for index, outcome in enumerate(outcomes):
        if outcome.first_dose_at is None:
            continue
        for point in outcome.readings:
            week = max(0, int((point.at - outcome.first_dose_at) / _WEEK))
            weeks.setdefault(week, {})[index] = point.score
    dosed = [o.baseline for o in outcomes if o.first_dose_at is not None and o.baseline is not None]
    trajectory = [
        TrajectoryWeek(week=week, courses=len(scores), mean=round(fmean(scores.values()), 2))
        for week, scores in sorted(weeks.items())
        if len(scores) >= minimum
    ]
    return (round(fmean(dosed), 2) if len(dosed) >= minimum else None), trajectory


def _mean(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(fmean(present), 2) if present else None


def _rate(count: int, base: int) -> float | None:
    return round(count / base, 3) if base else None
