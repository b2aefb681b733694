"""The morning huddle as the clinic reads it: today in the clinic's zone, and who sees which part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from course.commands import Actor, Role
from course.huddle import (
    CourseAtHuddle,
    FailedNotification,
    Unanswered,
    assemble_huddle,
    clinic_day,
    digest_lines,
    part_for,
)
from course.state import Phase
from tests import story
from tests.clinic import Clinic

BERLIN = ZoneInfo("Europe/Berlin")


def test_today_in_berlin_starts_at_local_midnight() -> None:
    # 23:30 UTC on 1 December is already 2 December in Berlin (UTC+1).
    day = clinic_day(datetime(2026, 12, 1, 23, 30, tzinfo=UTC), BERLIN)
    assert str(day.day) == "2026-12-02"
    assert day.start == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert day.end - day.start == timedelta(hours=24)


def test_the_day_the_clocks_go_forward_is_23_hours_and_back_25() -> None:
    spring = clinic_day(datetime(2026, 3, 29, 12, 0, tzinfo=UTC), BERLIN)
    autumn = clinic_day(datetime(2026, 10, 25, 12, 0, tzinfo=UTC), BERLIN)
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)
    # 00:30 UTC on the autumn Sunday is 02:30 CEST, the first of the two 02:30s: still that day.
    assert autumn.holds(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert autumn.start == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert autumn.end == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


ZONES = st.sampled_from(["Europe/Berlin", "Europe/London", "America/New_York", "Australia/Sydney", "UTC"])


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)),
    ZONES,
)
def test_today_holds_now_and_is_the_wall_clock_day(now: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    day = clinic_day(now, zone)
    assert day.holds(now)
    assert day.day == now.astimezone(zone).date()
    assert timedelta(hours=23) <= day.end - day.start <= timedelta(hours=25)
    # Consecutive days tile time: tomorrow starts where today ends.
    assert clinic_day(day.end, zone).start == day.end


def test_the_digest_lists_todays_sessions_reviews_overdue_and_attention() -> None:
    now = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
    day = clinic_day(now, BERLIN)

    today = Clinic()
    today.through_preparation()
    today.record(story.OPERATIONS, story.schedule(1, datetime(2026, 11, 25, 14, 0, tzinfo=UTC)))
    tomorrow = Clinic()
    tomorrow.through_preparation()
    tomorrow.record(story.OPERATIONS, story.schedule(1, datetime(2026, 11, 26, 14, 0, tzinfo=UTC)))
    review = Clinic()
    review.through_preparation()
    review.dose(1, patient_response="worse")
    waiting = Clinic()

    digest = assemble_huddle(
        day,
        now,
        [
            CourseAtHuddle(state=today.course),
            CourseAtHuddle(state=tomorrow.course),
            CourseAtHuddle(state=review.course),
            CourseAtHuddle(state=waiting.course, attention="stream_conflict"),
        ],
        failed=[
            FailedNotification(
                key="k1", course_id="c1", purpose="session_tomorrow", recipient="patient", status="failed", error=None
            )
        ],
        unanswered=[Unanswered(course_id="c9", phase=Phase.DOSING, clinician_id="dr-x", therapist_id=None)],
    )
    assert [s.course_id for s in digest.sessions_today] == [str(today.course.course_id)]
    assert [c.course_id for c in digest.reviews_pending] == [str(review.course.course_id)]
    assert {c.course_id: c.codes for c in digest.needs_attention} == {
        str(waiting.course.course_id): ["stream_conflict"],
        "c9": ["not_answering"],
    }
    assert [n.key for n in digest.notifications_failed] == ["k1"]
    text = "\n".join(digest_lines(digest))
    assert "15:00  course " + str(today.course.course_id) in text  # 14:00 UTC is 15:00 in Berlin
    assert "pt-0001" not in text  # the patient reference never reaches a digest


def test_a_clinician_sees_only_their_own_part_and_operations_all() -> None:
    now = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
    mine, theirs = Clinic(), Clinic()
    for clinic in (mine, theirs):
        clinic.through_preparation()
        clinic.dose(1, patient_response="worse")
    theirs_state = theirs.course.model_copy(update={"clinician_id": "dr-other", "therapist_id": "th-other"})
    digest = assemble_huddle(
        clinic_day(now, BERLIN), now, [CourseAtHuddle(state=mine.course), CourseAtHuddle(state=theirs_state)]
    )
    assert len(part_for(digest, Actor(id="ops-dunn", role=Role.OPERATIONS)).reviews_pending) == 2
    ames = part_for(digest, story.PRESCRIBER)
    assert [c.course_id for c in ames.reviews_pending] == [str(mine.course.course_id)]
    assert part_for(digest, Actor(id="admin-lee", role=Role.CLINIC_ADMIN)).empty
    assert digest.staff_ids() == sorted({"dr-ames", "th-cole", "dr-other", "th-other"})


def test_patients_in_the_chair_and_monitored_sessions_today_are_expected_in_monitoring() -> None:
    from tests.unit.test_monitoring import MONITORED, dosed

    in_chair = Clinic(policy=MONITORED)
    given = dosed(in_chair)
    booked = Clinic(policy=MONITORED)
    booked.through_preparation()
    later_today = booked.now + timedelta(hours=3)
    booked.record(story.OPERATIONS, story.schedule(1, later_today))
    unmonitored = Clinic()
    unmonitored.through_preparation()
    unmonitored.record(story.OPERATIONS, story.schedule(1, later_today))

    now = booked.now
    digest = assemble_huddle(
        clinic_day(now, ZoneInfo("UTC")),
        now,
        [CourseAtHuddle(state=c.course) for c in (in_chair, booked, unmonitored)],
    )
    expected = {(s.course_id, tuple(s.codes)) for s in digest.expected_in_monitoring}
    assert expected == {
        (str(in_chair.course.course_id), ("in_chair",)),
        (str(booked.course.course_id), ("session_today",)),
    }
    assert [s.at for s in digest.expected_in_monitoring if s.codes == ["in_chair"]] == [given]
    # The session in progress is still one of today's; it is expected in monitoring once, in the chair.
    assert {s.course_id for s in digest.sessions_today} == {
        str(c.course.course_id) for c in (in_chair, booked, unmonitored)
    }


def test_a_course_the_reconciliation_flagged_reaches_its_care_team_running_or_not() -> None:
    from course.huddle import CourseItem

    now = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
    running = Clinic()
    stopped = CourseItem(
        course_id="c-stopped", phase=Phase.ASSESSMENT, clinician_id="dr-ames", therapist_id="th-cole",
        codes=["workflow_not_running"],
    )  # fmt: skip
    lagging = CourseItem(
        course_id=str(running.course.course_id), phase=Phase.ASSESSMENT, clinician_id="dr-ames", therapist_id=None,
        codes=["summary_behind_stream"],
    )  # fmt: skip
    digest = assemble_huddle(
        clinic_day(now, BERLIN),
        now,
        [CourseAtHuddle(state=running.course, attention="stream_conflict")],
        flagged=[stopped, lagging],
    )
    assert {c.course_id: c.codes for c in digest.needs_attention} == {
        "c-stopped": ["workflow_not_running"],
        str(running.course.course_id): ["stream_conflict", "summary_behind_stream"],
    }
    assert [c.course_id for c in part_for(digest, story.THERAPIST).needs_attention] == sorted(
        ["c-stopped", str(running.course.course_id)]
    )
