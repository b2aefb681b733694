"""When the same payload is a new fact: what a derived request id needs besides the payload.

A caller that sends no request id gets one derived from the course, the step, the payload and the
actor, so a retried command is applied once. Most steps never legitimately recur with the very same
payload (a second identical consent is the first one again). A few do: a hold after a release with
the same reason, the release of the next hold, a review after another session, a check-in after a
deferral, a session moved back to its first time, a care team handed back. For those, `occasion`
names the moment in the course the step belongs to, taken from what it does not change itself: a
retry finds the same occasion (and the same id), the next hold finds a new one.

Where a step changes the very thing that tells its repeats apart (a deferral, a booking, a care
team), a retry after it took effect is decided again: the same time booked twice, the same team
named twice, or a second deferral with the same reading. Those are harmless; losing the second
hold's release, or a booking moved back, silently, would not be.
"""

from __future__ import annotations

from course.commands import CheckIn, Command, PlaceHold, Reassign, RecordClinicalReview, ReleaseHold, ScheduleSession
from course.state import CourseState

RECURRING_STEPS = frozenset({"hold", "release", "clinical-review", "check-in", "schedule-session", "reassign"})


def occasion(state: CourseState, command: Command) -> str:
    """The course's moment this step belongs to; empty for steps that never recur identically."""
    match command:
        case PlaceHold():
            # The hold this would be: counted before it is placed, unchanged once it is.
            return f"hold-{state.holds_placed + (0 if state.on_hold else 1)}"
        case ReleaseHold():
            return f"hold-{state.holds_placed}"
        case RecordClinicalReview():
            return f"after-session-{state.sessions_completed}"
        case CheckIn(session_number=n):
            return f"session-{n}-deferred-{state.sessions_deferred}"
        case ScheduleSession(session_number=n):
            booked = state.scheduled.get(n)
            return f"session-{n}-was-{booked.timestamp() if booked else 'unbooked'}"
        case Reassign():
            return f"team-{state.clinician_id}-{state.therapist_id}"
    return ""
