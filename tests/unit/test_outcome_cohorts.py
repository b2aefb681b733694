"""The outcome report of a clinic of 12 courses (tests/outcome_cohort.py), worked out by hand.

Baselines and last GAD-7 (MCID 4, remission below 5):
  A1 15->6 (-9 responds)  A2 12->4 (-8 responds, remits)  A3 10->8 (-2)  A4 14->3 (-11 responds, remits)
  A5 9->9 (0)  A6 16->12 (-4 responds, exactly the MCID)
  B1 13->11 (-2)  B2 11->6 (-5 responds)  B3 8->4 (-4 responds, remits)  B4 12->12 (0)
  C1 (14, ineligible) and C2 (11, lapsed) have no GAD-7 after the baseline: not evaluable.
All 12: evaluable 10, responders 6 (0.6), remitters 3 (0.3); baseline mean 120/10 = 12.0, latest
75/10 = 7.5, change -45/10 = -4.5; doses (24 + 8)/10 = 3.2; integration per dose (6 x 1 + 4 x 0.5)/10 = 0.8.
Days in phase (courses that left it): assessment 1 (all 12); preparation 7 (A, B) and 61 (C2):
131/11 = 11.9; dosing 23 (A: day 8 to the fourth dose on day 31) and 9 (B: day 8 to 17): 174/10 = 17.4;
integration 14 (A: day 31 to 45) and 8 (B4: day 17 to its withdrawal on 25): 92/7 = 13.1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.outcomes import fold_stream
from course.cohorts import CohortFigures, outcome_report, suppress
from course.outcomes import CourseOutcome, Stage
from course.policy import OutcomePolicy
from tests.outcome_cohort import FEBRUARY, HAND_COHORT, streams

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def outcomes() -> list[CourseOutcome]:
    folded = [fold_stream(stream) for stream in streams()]
    assert all(o is not None for o in folded)
    return [o for o in folded if o is not None]


def test_each_course_folds_to_its_hand_computed_outcome(outcomes: list[CourseOutcome]) -> None:
    a1, b4, c1, c2 = outcomes[0], outcomes[9], outcomes[10], outcomes[11]
    assert (a1.baseline, a1.latest, a1.change, a1.doses, a1.integration_sessions) == (15, 6, -9, 4, 4)
    assert a1.stage is Stage.MAINTENANCE and a1.route is not None and a1.route.value == "iv_infusion"
    assert [p.score for p in a1.readings] == [14, 6]
    assert a1.first_dose_at == HAND_COHORT[0].opened_at + timedelta(days=10)
    assert (b4.stage, b4.outcome, b4.integration_per_dose) == (Stage.INTEGRATED, "withdrawn", 0.5)
    assert (c1.stage, c1.outcome, c1.change) == (Stage.ASSESSED, "ineligible", None)
    assert (c2.stage, c2.outcome, c2.route) == (Stage.ASSESSED, "lapsed", None)
    assert outcomes[3].stage is Stage.INTEGRATED and outcomes[3].outcome == "completed"  # no maintenance


def test_the_clinic_as_a_whole(outcomes: list[CourseOutcome]) -> None:
    report = outcome_report(outcomes, OutcomePolicy(), NOW)
    assert report.courses == 12
    assert report.overall == CohortFigures(
        cohort="all courses",
        suppressed=False,
        courses=12,
        evaluable=10,
        baseline_mean=12.0,
        latest_mean=7.5,
        change_mean=-4.5,
        responders=6,
        response_rate=0.6,
        remitters=3,
        remission_rate=0.3,
        doses_mean=3.2,
        integration_per_dose_mean=0.8,
        days_in_phase={"assessment": 1.0, "preparation": 11.9, "dosing": 17.4, "integration": 13.1},
        left_phase={"assessment": 12, "preparation": 11, "dosing": 10, "integration": 7},
    )


def test_cohorts_by_route_modality_and_month(outcomes: list[CourseOutcome]) -> None:
    report = outcome_report(outcomes, OutcomePolicy(), NOW)
    iv, intranasal, not_planned = report.by_route
    # IV (A1-A6): 76/6 = 12.67 -> 42/6 = 7.0, change -34/6 = -5.67; 4 of 6 respond, 2 of 6 remit.
    assert (iv.cohort, iv.courses, iv.evaluable, iv.responders, iv.response_rate) == ("iv_infusion", 6, 6, 4, 0.667)
    assert (iv.remitters, iv.remission_rate, iv.baseline_mean, iv.latest_mean, iv.change_mean) == (
        2, 0.333, 12.67, 7.0, -5.67,
    )  # fmt: skip
    assert (iv.doses_mean, iv.integration_per_dose_mean) == (4.0, 1.0)
    # Intranasal (4) and no plan (2) are under 5: suppressed, and together 6, so IV can stay.
    assert intranasal == CohortFigures(cohort="intranasal", suppressed=True, courses=None)
    assert not_planned == CohortFigures(cohort="not planned", suppressed=True, courses=None)
    assert [(c.cohort, c.courses) for c in report.by_modality] == [("cbt", 6), ("mindfulness", None), ("none", None)]
    january, february = report.by_opening_month
    assert (january.cohort, january.courses, january.responders) == ("2026-01", 6, 4)
    # February: B1-B4 evaluable (44/4 = 11.0 -> 33/4 = 8.25), C1 and C2 not.
    assert (february.cohort, february.courses, february.evaluable, february.responders) == ("2026-02", 6, 4, 2)
    assert (february.response_rate, february.remitters, february.remission_rate) == (0.5, 1, 0.25)
    assert (february.baseline_mean, february.latest_mean, february.change_mean) == (11.0, 8.25, -2.75)
    assert february.days_in_phase == {"assessment": 1.0, "preparation": 17.8, "dosing": 9.0, "integration": 8.0}


def test_a_lone_small_cohort_takes_the_next_smallest_with_it(outcomes: list[CourseOutcome]) -> None:
    """Per dose: "under 1" (B, 4) is suppressed; alone it would be the whole minus "1 to under 2"
    (A, 6), so that one is suppressed too."""
    report = outcome_report(outcomes, OutcomePolicy(), NOW)
    assert [(c.cohort, c.suppressed) for c in report.by_integration_per_dose] == [
        ("under 1", True),
        ("1 to under 2", True),
    ]


def test_the_funnel_and_the_trajectory(outcomes: list[CourseOutcome]) -> None:
    report = outcome_report(outcomes, OutcomePolicy(), NOW)
    # Maintenance (A1-A3: 3), one lapse (C2, at assessed) and one withdrawal (B4, integrated): withheld.
    assert [(s.stage, s.reached, s.lapsed, s.withdrawn) for s in report.funnel] == [
        ("opened", 12, 0, 0),
        ("assessed", 12, None, 0),
        ("prepared", 10, 0, 0),
        ("dosed", 10, 0, 0),
        ("integrated", 10, 0, None),
        ("maintenance", None, 0, 0),
    ]
    # Week 1: A's second sessions (70) and B's (33): 103/10; week 3: A's last (42/6). Weeks 0 and 2 have
    # no score; baseline of the 10 dosed: 120/10.
    assert [(w.week, w.courses, w.mean) for w in report.trajectory] == [(1, 10, 10.3), (3, 6, 7.0)]
    assert report.baseline_mean == 12.0


def test_the_thresholds_are_the_clinics(outcomes: list[CourseOutcome]) -> None:
    strict = outcome_report(outcomes, OutcomePolicy(mcid=6, remission_below=4), NOW)
    # MCID 6: A1 (-9), A2 (-8), A4 (-11) only; below 4: A4 (3) only.
    assert (strict.overall.responders, strict.overall.remitters) == (3, 1)
    assert strict.thresholds.mcid == 6
    larger = outcome_report(outcomes, OutcomePolicy(minimum_cohort=7), NOW)
    assert all(c.suppressed for c in larger.by_route)  # 6 IV courses are now too few
    assert not larger.overall.suppressed and larger.trajectory == [larger.trajectory[0]]


def test_a_period_and_an_empty_clinic_are_said_plainly(outcomes: list[CourseOutcome]) -> None:
    february = outcome_report(outcomes, OutcomePolicy(), NOW, since=FEBRUARY)
    assert february.courses == 6 and february.overall.courses == 6
    empty = outcome_report(outcomes, OutcomePolicy(), NOW, since=NOW)
    assert empty.courses == 0 and empty.overall.suppressed and empty.trajectory == []
    assert all(not cohorts for cohorts in empty.breakdowns.values())
    assert outcome_report([], OutcomePolicy(), NOW).courses == 0


def test_a_small_clinic_shows_no_figure() -> None:
    few = [fold_stream(stream) for stream in streams(HAND_COHORT[:4])]
    report = outcome_report([o for o in few if o is not None], OutcomePolicy(), NOW)
    assert report.courses == 4 and report.overall.suppressed and report.overall.response_rate is None
    assert report.trajectory == [] and report.baseline_mean is None
    assert {s.reached for s in report.funnel} == {None}


def test_suppression_by_hand() -> None:
    def sized(*counts: int) -> list[CohortFigures]:
        return [CohortFigures(cohort=str(i), suppressed=False, courses=n) for i, n in enumerate(counts)]

    assert [c.suppressed for c in suppress(sized(9, 2, 6, 7), 5)] == [False, True, True, False]
    assert [c.suppressed for c in suppress(sized(9, 2, 3, 7), 5)] == [False, True, True, False]
    assert [c.suppressed for c in suppress(sized(9, 8, 7), 5)] == [False, False, False]
    assert [c.suppressed for c in suppress(sized(4, 20), 5)] == [True, True]


@given(counts=st.lists(st.integers(min_value=0, max_value=30), max_size=8), minimum=st.integers(1, 12))
def test_no_hidden_cohort_can_be_recovered_by_subtraction(counts: list[int], minimum: int) -> None:
    """Every cohort shown rests on the minimum; the hidden ones together hold none or at least the
    minimum (unless nothing is shown at all, when nothing can be subtracted)."""
    cohorts = [CohortFigures(cohort=str(i), suppressed=False, courses=n) for i, n in enumerate(counts)]
    result = suppress(cohorts, minimum)
    shown = [counts[i] for i, c in enumerate(result) if not c.suppressed]
    hidden = sum(counts[i] for i, c in enumerate(result) if c.suppressed)
    assert all(n >= minimum for n in shown)
    assert hidden == 0 or hidden >= minimum or not shown
    assert all(c.courses is None and c.response_rate is None for c in result if c.suppressed)
