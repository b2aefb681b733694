"""The clinic's morning huddle: what today holds, as one digest of codes and opaque ids.

Pure: the courses' states, the failed notifications and the clock come in as arguments. The
digest names courses by their opaque id and staff by id; no patient reference, reading or note
(it is mailed to operations and to each clinician, and shown on the console's "today" page).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from course.access import CourseFacts, reads_routinely
from course.commands import Actor, Role
from course.state import CourseState, Phase

_Item = TypeVar("_Item", bound="CourseItem")


class _Digest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClinicDay(_Digest):
    """One local calendar day of the clinic, as the UTC instants it spans: [start, end)."""

    day: date
    time_zone: str
    start: datetime
    end: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def clinic_day(now: datetime, zone: ZoneInfo) -> ClinicDay:
    """The clinic's day that `now` falls in. On a day the clocks change it is 23 or 25 hours long:
    midnight to midnight on the wall clock, not 24 hours from midnight."""
    local = now.astimezone(zone).date()
    start = datetime.combine(local, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return ClinicDay(day=local, time_zone=zone.key, start=start, end=end)


class CourseItem(_Digest):
    """A course in one section of the digest, with the codes that put it there."""

    course_id: str
    phase: Phase
    clinician_id: str
    therapist_id: str | None
    codes: list[str] = []

    @property
    def facts(self) -> CourseFacts:
        return CourseFacts(self.course_id, self.clinician_id, self.therapist_id, self.phase)


class SessionToday(CourseItem):
    session_number: int
    at: datetime
    monitored: bool  # the course's policy keeps the patient in the chair after the dose


class FailedNotification(_Digest):
    """An outbox row that did not plainly arrive: its key, purpose and status codes only."""

    key: str
    course_id: str | None  # None: a clinic-wide message (a digest)
    purpose: str
    recipient: str
    status: str
    error: str | None
    clinician_id: str | None = None
    therapist_id: str | None = None
    phase: Phase | None = None


class CourseAtHuddle(_Digest):
    """One running course as the huddle sees it: its state, and the attention code its workflow
    publishes (NeedsAttention), if any."""

    state: CourseState
    attention: str | None = None


class Unanswered(_Digest):
    """A running course whose workflow did not answer: listed, never silently left off."""

    course_id: str
    phase: Phase
    clinician_id: str
    therapist_id: str | None


class HuddleDigest(_Digest):
    day: ClinicDay
    made_at: datetime
    sessions_today: list[SessionToday] = []
    expected_in_monitoring: list[SessionToday] = []
    follow_ups_overdue: list[CourseItem] = []
    reviews_pending: list[CourseItem] = []
    notifications_failed: list[FailedNotification] = []
    needs_attention: list[CourseItem] = []

    @property
    def empty(self) -> bool:
        return not (
            self.sessions_today
            or self.expected_in_monitoring
            or self.follow_ups_overdue
            or self.reviews_pending
            or self.notifications_failed
            or self.needs_attention
        )

    def staff_ids(self) -> list[str]:
        """Every clinician and therapist the digest names: each gets their own part."""
        ids: set[str] = set()
        for item in self._course_items():
            ids.add(item.clinician_id)
            if item.therapist_id:
                ids.add(item.therapist_id)
        return sorted(ids)

    def _course_items(self) -> Iterable[CourseItem]:
        yield from self.sessions_today
        yield from self.expected_in_monitoring
        yield from self.follow_ups_overdue
        yield from self.reviews_pending
        yield from self.needs_attention


def _item(state: CourseState, codes: Sequence[str] = ()) -> CourseItem:
    return CourseItem(
        course_id=str(state.course_id),
        phase=state.phase,
        clinician_id=state.clinician_id,
        therapist_id=state.therapist_id,
        codes=list(codes),
    )


def _sessions(state: CourseState, day: ClinicDay) -> list[SessionToday]:
    """Scheduled dosing sessions that fall today and are not yet given."""
    base = _item(state)
    return [
        SessionToday(**base.model_dump(), session_number=n, at=at, monitored=state.policy.monitoring is not None)
        for n, at in sorted(state.scheduled.items())
        if n > state.sessions_completed and day.holds(at)
    ]


def assemble_huddle(
    day: ClinicDay,
    made_at: datetime,
    courses: Sequence[CourseAtHuddle],
    *,
    failed: Sequence[FailedNotification] = (),
    unanswered: Sequence[Unanswered] = (),
    flagged: Sequence[CourseItem] = (),
) -> HuddleDigest:
    """The day's digest. `flagged`: the courses the last reconciliation found something about, with
    its codes (their care team and phase from `course_summaries`), shown with a running course's
    own attention code. Each section is sorted so the same facts always make the same digest."""
    found = {item.course_id: item for item in flagged}
    sessions: list[SessionToday] = []
    monitoring: list[SessionToday] = []
    overdue: list[CourseItem] = []
    reviews: list[CourseItem] = []
    attention: dict[str, CourseItem] = {}
    for course in courses:
        state = course.state
        if state.terminal:
            continue
        today = _sessions(state, day)
        sessions += today
        if state.monitoring is not None:
            chair = state.monitoring
            monitoring.append(
                SessionToday(
                    **_item(state, ["in_chair"]).model_dump(),
                    session_number=chair.session_number,
                    at=chair.given_at,
                    monitored=True,
                )
            )
        in_chair = state.monitoring.session_number if state.monitoring is not None else None
        monitoring += [
            s.model_copy(update={"codes": ["session_today"]})
            for s in today
            if s.monitored and s.session_number != in_chair  # dosed already: listed as in the chair
        ]
        if state.overdue:
            overdue.append(_item(state, sorted(state.overdue)))
        if state.review_required:
            reviews.append(_item(state, ["clinical_review"]))
        codes = [course.attention] if course.attention else []
        codes += found[str(state.course_id)].codes if str(state.course_id) in found else []
        if codes:
            attention[str(state.course_id)] = _item(state, sorted(set(codes)))
    running = {str(c.state.course_id) for c in courses}
    for course_id, item in found.items():
        if course_id not in running:
            # Flagged but not running (its workflow stopped): named as the store knows it, so its
            # care team is told too.
            attention[course_id] = item.model_copy(update={"codes": sorted(set(item.codes))})
    for silent in unanswered:
        attention[silent.course_id] = CourseItem(**silent.model_dump(), codes=["not_answering"])
    return HuddleDigest(
        day=day,
        made_at=made_at,
        sessions_today=sorted(sessions, key=lambda s: (s.at, s.course_id)),
        expected_in_monitoring=sorted(monitoring, key=lambda s: (s.at, s.course_id)),
        follow_ups_overdue=sorted(overdue, key=lambda c: c.course_id),
        reviews_pending=sorted(reviews, key=lambda c: c.course_id),
        notifications_failed=sorted(failed, key=lambda n: n.key),
        needs_attention=sorted(attention.values(), key=lambda c: c.course_id),
    )


def part_for(digest: HuddleDigest, actor: Actor) -> HuddleDigest:
    """What of the digest this reader may see: operations all of it; a clinician the courses they
    read routinely (course/access.py), and those courses' failed notifications."""
    if actor.role is Role.OPERATIONS:
        return digest
    if actor.role is Role.CLINIC_ADMIN:
        return HuddleDigest(day=digest.day, made_at=digest.made_at)

    def mine(items: list[_Item]) -> list[_Item]:
        return [i for i in items if reads_routinely(actor, i.facts)]

    def my_notifications(items: list[FailedNotification]) -> list[FailedNotification]:
        return [
            n
            for n in items
            if n.course_id is not None
            and n.clinician_id is not None
            and n.phase is not None
            and reads_routinely(actor, CourseFacts(n.course_id, n.clinician_id, n.therapist_id, n.phase))
        ]

    return digest.model_copy(
        update={
            "sessions_today": mine(digest.sessions_today),
            "expected_in_monitoring": mine(digest.expected_in_monitoring),
            "follow_ups_overdue": mine(digest.follow_ups_overdue),
            "reviews_pending": mine(digest.reviews_pending),
            "notifications_failed": my_notifications(digest.notifications_failed),
            "needs_attention": mine(digest.needs_attention),
        }
    )


def _hm(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%H:%M}"


def digest_lines(digest: HuddleDigest) -> list[str]:
    """The digest as lines of text for a message: times in the clinic's zone, ids and codes."""
    zone = ZoneInfo(digest.day.time_zone)
    lines = [f"Today, {digest.day.day:%A %d %B %Y} ({digest.day.time_zone})"]

    def section(title: str, rows: list[str]) -> None:
        lines.append("")
        lines.append(f"{title} ({len(rows)}):" if rows else f"{title}: none")
        lines.extend(f"  {row}" for row in rows)

    def team(item: CourseItem) -> str:
        return item.clinician_id + (f"/{item.therapist_id}" if item.therapist_id else "")

    section(
        "Sessions today",
        [
            f"{_hm(s.at, zone)}  course {s.course_id}  session {s.session_number}  {team(s)}"
            + ("  (monitored)" if s.monitored else "")
            for s in digest.sessions_today
        ],
    )
    section(
        "Expected in monitoring",
        [
            f"{_hm(s.at, zone)}  course {s.course_id}  session {s.session_number}  {', '.join(s.codes)}"
            for s in digest.expected_in_monitoring
        ],
    )
    section(
        "Follow-ups overdue",
        [f"course {c.course_id}  {team(c)}  {', '.join(c.codes)}" for c in digest.follow_ups_overdue],
    )
    section("Reviews pending", [f"course {c.course_id}  {c.clinician_id}" for c in digest.reviews_pending])
    section(
        "Notifications that failed",
        [
            f"{n.key}  {n.purpose} to {n.recipient}  {n.status}" + (f" ({n.error})" if n.error else "")
            for n in digest.notifications_failed
        ],
    )
    section(
        "Courses needing attention",
        [f"course {c.course_id}  {team(c)}  {', '.join(c.codes)}" for c in digest.needs_attention],
    )
    return lines
