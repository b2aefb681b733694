"""Every reminder the course sends has words, and they say the right thing to the right person."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.ports import Contact, DeliveryRefused, Notification, ReminderFacts
from activities.templates import TEMPLATES, Clinic, message_id_for, render

COURSE = "course-0b6f3c3e-8c1b-4c7e-9d7e-2f4b8a1c5d90"
CLINIC = Clinic(
    name="Calm Harbor Clinic", phone="555-0199", time_zone="America/Los_Angeles", mail_domain="calm.example"
)
PATIENT = Contact(email="jordan@example.org", display_name="Jordan", time_zone="Europe/London")
# Purposes the timing policy fires that are flags or deadlines, never a message to anyone.
NOT_MESSAGES = {"assessment_deadline", "preparation_deadline", "integration_session"}


def note(purpose: str, recipient: str = "patient", facts: ReminderFacts | None = None) -> Notification:
    return Notification(
        idempotency_key=f"{COURSE}:{purpose}-1",
        stream_id=COURSE,
        purpose=purpose,
        recipient=recipient,  # type: ignore[arg-type]
        recipient_id="pt-0001" if recipient == "patient" else None,
        due_at=datetime(2026, 11, 30, 15, tzinfo=UTC),
        facts=facts,
    )


def purposes_the_course_sends() -> set[str]:
    course = Path(__file__).resolve().parents[2] / "course"
    source = "".join((course / name).read_text() for name in ("timing.py", "decider.py"))
    return set(re.findall(r'purpose="([a-z_]+)"', source)) - NOT_MESSAGES


def test_every_reminder_the_course_sends_has_a_template() -> None:
    missing = purposes_the_course_sends() - set(TEMPLATES)
    assert not missing, f"no template for {missing}"


def test_the_session_reminder_tells_the_patient_to_arrange_a_ride_home_and_not_to_drive() -> None:
    facts = ReminderFacts(session_number=3, subject_at=datetime(2026, 12, 1, 15, tzinfo=UTC))
    message = render(note("session_tomorrow", facts=facts), PATIENT, CLINIC)

    assert message.subject == "Reminder: your appointment tomorrow at Calm Harbor Clinic"
    assert message.body.startswith("Hello Jordan,")
    assert "session 3 tomorrow (Tuesday 1 December 2026 at 15:00 (Europe/London))" in message.body
    assert "must not drive" in message.body
    assert "arrange for an adult to take you home" in message.body
    assert "555-0199" in message.body


def test_times_are_shown_in_the_clinics_zone_when_the_patient_has_none() -> None:
    facts = ReminderFacts(subject_at=datetime(2027, 3, 1, 18, tzinfo=UTC))
    message = render(note("maintenance_due", facts=facts), Contact(email="x@example.org"), CLINIC)
    assert "Monday 1 March 2027 at 10:00 (America/Los_Angeles)" in message.body
    assert message.body.startswith("Hello,")


@pytest.mark.parametrize("purpose", ["session_tomorrow", "maintenance_due", "maintenance_overdue"])
def test_patient_messages_name_no_drug_diagnosis_or_score(purpose: str) -> None:
    message = render(note(purpose), PATIENT, CLINIC)
    text = f"{message.subject}\n{message.body}".lower()
    for word in ("ketamine", "anxiety", "gad", "panic", "dose", "infusion", "psychiatr"):
        assert word not in text, (purpose, word)
    assert "book" in text or "ride home" in text


@pytest.mark.parametrize(
    ("purpose", "recipient", "words"),
    [
        ("integration_due", "therapist", "integration session is due after dosing session 2"),
        ("integration_gap", "therapist", "No integration session"),
        ("assessment_pending", "clinician", "waiting for its assessment"),
        ("preparation_stalled", "clinician", "Preparation is not complete"),
        ("clearance_pending", "operations", "`financial-clearance` or `prior-authorization`"),
    ],
)
def test_staff_get_the_course_id_and_what_to_do_and_never_the_patients_name(
    purpose: str, recipient: str, words: str
) -> None:
    facts = ReminderFacts(session_number=2, subject_at=datetime(2026, 11, 26, 9, tzinfo=UTC))
    staff = Contact(email="staff@calm.example", display_name="Dr Ames")
    message = render(note(purpose, recipient, facts), staff, CLINIC)
    assert words in message.body
    assert "0b6f3c3e-8c1b-4c7e-9d7e-2f4b8a1c5d90" in message.subject
    assert "course status 0b6f3c3e-8c1b-4c7e-9d7e-2f4b8a1c5d90" in message.body
    assert "Jordan" not in message.body and "Hello" not in message.body


def test_a_staff_reminder_without_its_own_words_still_asks_for_attention() -> None:
    message = render(note("something_new", "operations"), None, CLINIC)
    assert message.subject.endswith("needs staff attention")


def test_a_patient_is_never_sent_vague_words() -> None:
    with pytest.raises(DeliveryRefused) as refused:
        render(note("something_new"), PATIENT, CLINIC)
    assert refused.value.code == "no_template" and refused.value.permanent


def test_the_message_id_is_stable_per_reminder_and_opaque() -> None:
    first = render(note("session_tomorrow"), PATIENT, CLINIC).message_id
    assert first == render(note("session_tomorrow"), None, CLINIC).message_id
    assert first == message_id_for(f"{COURSE}:session_tomorrow-1", "calm.example")
    assert re.fullmatch(r"<[0-9a-f]{32}@calm\.example>", first)
    assert first != render(note("maintenance_due"), PATIENT, CLINIC).message_id


def test_an_unknown_time_zone_falls_back_to_the_clinics() -> None:
    facts = ReminderFacts(subject_at=datetime(2026, 12, 1, 15, tzinfo=UTC))
    message = render(note("maintenance_due", facts=facts), Contact(time_zone="Mars/Olympus"), CLINIC)
    assert "(America/Los_Angeles)" in message.body
