"""The clinician console without a browser: sign-in, pages, forms, refusals, on the real stack."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from course.commands import Role
from tests.api.conftest import ASSESSMENT, BASE, Clinic, console_app

pytestmark = pytest.mark.integration


async def _sign_in(clinic: Clinic, role: Role) -> None:
    response = await clinic.http.post("/console/login", data={"token": clinic.tokens[role]})
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


async def test_a_nurse_signs_in_records_consent_from_the_form_and_sees_the_checklist(clinic: Clinic) -> None:
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    assert (await clinic.http.get("/console")).headers["location"] == "/console/login"
    wrong = await clinic.http.post("/console/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    await _sign_in(clinic, Role.NURSE)

    form = await clinic.http.get(f"/console/courses/{course}/steps/consent")
    assert form.status_code == 200
    assert 'name="form_version"' in form.text and 'type="datetime-local" name="signed_at"' in form.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', form.text)
    assert request_id
    recorded = await clinic.http.post(
        f"/console/courses/{course}/steps/consent",
        data={"form_version": "2026-01", "signed_at": "2026-01-05T09:30", "request_id": request_id.group(1)},
    )
    assert recorded.status_code == 303, recorded.text
    page = await clinic.http.get(recorded.headers["location"])
    assert page.status_code == 200
    assert "Recorded consent." in page.text and "ConsentRecorded" in page.text
    assert re.search(r'class="done"><td>✔ consent', page.text)
    assert "15" in page.text  # the baseline GAD-7 in the trend table


async def test_a_refused_step_shows_the_rules_message_and_a_bad_form_its_fields(clinic: Clinic) -> None:
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    await _sign_in(clinic, Role.NURSE)
    outdated = await clinic.http.post(
        f"/console/courses/{course}/steps/consent",
        data={"form_version": "2019-01", "signed_at": "2026-01-05T09:30", "request_id": "consent-form-1"},
    )
    assert outdated.status_code == 409
    assert "Not recorded:" in outdated.text and "2026-01" in outdated.text
    assert 'value="2019-01"' in outdated.text  # what the nurse typed stays in the form
    invalid = await clinic.http.post(
        f"/console/courses/{course}/steps/check-in", data={"session_number": "0", "vitals.systolic": "120"}
    )
    assert invalid.status_code == 422 and "vitals.diastolic" in invalid.text
    assert "Diastolic blood pressure (pre-dose vitals) is missing." in invalid.text  # the field in words
    assert "Session number must be at least 1." in invalid.text  # the typed 0 stays in its input
    forbidden = await clinic.http.post(f"/console/courses/{course}/steps/dosing-plan", data={"route": "iv_infusion"})
    assert forbidden.status_code == 403 and "prescriber" in forbidden.text
    foreign = await clinic.http.post(
        f"/console/courses/{course}/steps/intentions",
        data={"goals": "x"},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert foreign.status_code == 403 and "nothing was done" in foreign.text


async def test_my_courses_lists_what_each_course_waits_for(clinic: Clinic) -> None:
    course = await clinic.open()
    await _sign_in(clinic, Role.PRESCRIBER)
    for _ in range(50):
        page = await clinic.http.get("/console")
        if course[:8] in page.text:
            break
        await asyncio.sleep(0.2)  # visibility is eventually consistent
    assert course[:8] in page.text and "assessment" in page.text
    assert "<th>Patient</th>" in page.text and "pt-api-1" in page.text  # the clinic's reference, not just an id
    assert "Next due (UTC)" in page.text  # the zone times are shown in
    await clinic.open(patient_id="pt-console-find")
    for _ in range(50):
        found = await clinic.http.get("/console", params={"patient": "pt-console-find"})
        if "pt-console-find</a>" in found.text:
            break
        await asyncio.sleep(0.2)  # visibility is eventually consistent
    assert found.status_code == 200 and "Courses of patient pt-console-find" in found.text
    assert re.search(r'<td><a href="/console/courses/[0-9a-f-]+">pt-console-find</a></td>', found.text), found.text
    assert "pt-api-1" not in found.text
    bad = await clinic.http.get("/console", params={"patient": "<script>"})
    assert bad.status_code == 422 and "letters, digits" in bad.text and "<script>" not in bad.text
    opened = await clinic.http.get(f"/console/courses/{course}")
    assert "Patient pt-api-1 · Course" in opened.text
    assert (await clinic.http.get("/console/courses/3f1e9c2a-0000-4000-8000-000000000000")).status_code == 404
    assert (await clinic.http.get(f"/console/courses/{course}/steps/sedation")).status_code == 404
    out = await clinic.http.post("/console/logout")
    assert out.status_code == 303
    assert (await clinic.http.get("/console")).status_code == 303


async def test_a_prescriber_opens_a_course_from_the_console(clinic: Clinic) -> None:
    await _sign_in(clinic, Role.PRESCRIBER)
    page = await clinic.http.get("/console")
    assert 'name="patient_id"' in page.text and 'name="policy' not in page.text
    missing = await clinic.http.post("/console/courses", data={"clinician_id": "dr-api"})
    assert missing.status_code == 422 and "patient_id" in missing.text
    opened = await clinic.http.post(
        "/console/courses",
        data={"patient_id": "pt-console-1", "clinician_id": "dr-api", "condition": "gad", "self_pay": "true"},
    )
    assert opened.status_code == 303, opened.text
    course = opened.headers["location"].split("/")[-1].split("?")[0]
    view = await clinic.courses.status(course)
    assert view.clinician_id == "dr-api" and view.phase.value == "assessment"
    shown = await clinic.http.get(opened.headers["location"])
    assert "Course opened." in shown.text


def _zoned_console(clinic: Clinic, pg_pool: asyncpg.Pool, time_zone: str) -> httpx.AsyncClient:
    app = console_app(clinic, pg_pool, time_zone)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers={"Origin": BASE})


def _value_of(page: str, name: str) -> str | None:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    return found.group(1) if found else None


async def test_a_nurse_reads_words_prefilled_sessions_and_the_clinics_zone_on_the_dosing_forms(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    course = await clinic.prepared()
    async with _zoned_console(clinic, pg_pool, "America/New_York") as http:
        signed_in = await http.post("/console/login", data={"token": clinic.tokens[Role.NURSE]})
        assert signed_in.status_code == 303

        page = (await http.get(f"/console/courses/{course}")).text
        next_steps = re.search(r'<p id="next-steps">(.*?)</p>', page, re.S)
        assert next_steps and "Record check-in" in next_steps.group(1)
        assert "<h3>Other steps</h3>" in page
        # Consent is done and the assessment is not hers: neither is offered on the page again.
        assert "/steps/consent" not in page and "/steps/assessment" not in page
        assert "Route: IV infusion, dose 0.5 mg/kg." in page
        assert "When (America/New_York)" in page  # the timeline and the GAD-7 table say their zone
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page), "a raw ISO time on the course page"

        check_in = (await http.get(f"/console/courses/{course}/steps/check-in")).text
        assert "<legend>Pre-dose vitals</legend>" in check_in and "Patient <strong>pt-api-1</strong>" in check_in
        assert _value_of(check_in, "session_number") == "1"
        assert "mmHg" in check_in and "Beats per minute" in check_in and "Ride home arranged" in check_in
        request_id = _value_of(check_in, "request_id")
        assert request_id
        vitals = {"vitals.systolic": "124", "vitals.diastolic": "80", "vitals.heart_rate": "70"}
        form = {"session_number": "1", "ride_home_arranged": "true", "request_id": request_id, **vitals}
        checked = await http.post(f"/console/courses/{course}/steps/check-in", data=form)
        assert checked.status_code == 303, checked.text

        dosing = (await http.get(f"/console/courses/{course}/steps/dosing-session")).text
        assert "<legend>Post-dose vitals</legend>" in dosing and "Dose <input" in dosing and "mg/kg" in dosing
        assert _value_of(dosing, "session_number") == "1" and _value_of(dosing, "dose_mg_per_kg") == "0.5"
        assert '<option value="iv_infusion" selected>IV infusion</option>' in dosing  # words shown, code sent
        assert '<option value="im_injection">Intramuscular injection</option>' in dosing
        assert "<legend>Side effect 1</legend>" in dosing and '<option value="nausea">Nausea</option>' in dosing
        assert "Patient response" in dosing and "Better than before" in dosing
        assert "PatientResponse" not in dosing and "SideEffectKind" not in dosing and "Dose Mg Per Kg" not in dosing

        schedule = (await http.get(f"/console/courses/{course}/steps/schedule-session")).text
        assert re.search(r'Scheduled time <span class="zone">\(America/New_York\)</span>', schedule)
        assert _value_of(schedule, "session_number") == "1"


async def test_an_ineligible_course_says_why_in_words_and_shows_its_assessment_done(clinic: Clinic) -> None:
    """Given a prescriber's assessment with a blood pressure over the policy's 160/100, the course
    closes ineligible; its page says so in words, with the reading, and the assessment is done."""
    course = await clinic.open()
    high = ASSESSMENT | {"blood_pressure": {"systolic": 170, "diastolic": 105}}
    assert (await clinic.step(course, "assessment", Role.PRESCRIBER, high)).status_code == 200
    await _sign_in(clinic, Role.PRESCRIBER)
    page = await clinic.http.get(f"/console/courses/{course}")
    assert page.status_code == 200
    assert "closed (ineligible)" in page.text
    assert "<li>blood pressure 170/105 is at or above 160/100</li>" in page.text
    assert re.search(r'class="done"><td>✔ assessment</td>\s*<td>done: ineligible</td>', page.text), page.text
    # The timeline: each event's facts in words, times in the clinic's zone, and who.
    assert "Assessment: blood pressure 170/105, heart rate 72; no contraindications;" in page.text
    assert "Course closed (ineligible): blood pressure 170/105 is at or above 160/100" in page.text
    assert "When (UTC)" in page.text and "dr-api (prescriber)" in page.text
    # The baseline score is charted server-side, and the page stays script-free.
    assert "<svg" in page.text and "GAD-7 score (0-21)" in page.text and "<script" not in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]

    await _sign_in(clinic, Role.OPERATIONS)
    ops = await clinic.http.get(f"/console/courses/{course}")
    assert ops.status_code == 200 and "closed (ineligible)" in ops.text
    assert "170/105" not in ops.text and "blood pressure" not in ops.text  # operations keep the code


async def test_the_chair_side_board_shows_the_patient_in_monitoring_with_the_forms_one_click_away(
    clinic: Clinic,
) -> None:
    name = f"chair-{uuid.uuid4().hex[:8]}"
    published = await clinic.call(
        "POST", "/policies", Role.CLINIC_ADMIN, json={"name": name, "policy": {"monitoring": {}}}
    )
    assert published.status_code == 201, published.text
    course = await clinic.prepared(patient_id="pt-board-1", policy_name=name)
    vitals = {"systolic": 124, "diastolic": 80, "heart_rate": 70}
    checked = await clinic.step(course, "check-in", Role.NURSE, {"session_number": 1, "vitals": vitals,
                                                                 "ride_home_arranged": True})  # fmt: skip
    assert checked.status_code == 200, checked.text
    given = datetime.now(UTC).isoformat()
    dose = {"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": given}
    assert (await clinic.step(course, "dose-administered", Role.NURSE, dose)).status_code == 200
    await _sign_in(clinic, Role.NURSE)
    for _ in range(50):
        board = await clinic.http.get("/console/monitoring")
        if "pt-board-1" in board.text:
            break
        await asyncio.sleep(0.2)  # visibility is eventually consistent
    assert board.status_code == 200 and "pt-board-1" in board.text
    assert '<meta http-equiv="refresh"' in board.text and "<script" not in board.text
    assert f'href="/console/courses/{course}/steps/monitoring-reading">Reading</a>' in board.text
    reading = await clinic.http.get(f"/console/courses/{course}/steps/monitoring-reading")
    assert "Oxygen saturation" in reading.text and "Sedation score" in reading.text
    early = await clinic.http.post(
        f"/console/courses/{course}/steps/discharge",
        data={"session_number": "1", "collected_by": "Sam", "relationship": "spouse", "patient_response": "better",
              "discharged_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"), "request_id": "discharge-early-1"},
    )  # fmt: skip
    assert early.status_code == 409 and "minutes left" in early.text
    assert 'value="Sam"' in early.text  # the input is kept beside the refusal
