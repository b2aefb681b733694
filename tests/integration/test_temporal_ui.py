"""What operations staff see in the Temporal UI, in a real (headless) browser.

`course dev` on free ports, courses opened and advanced with the `course` CLI, then Chromium
loads the UI as a person would: the list shows the courses, a visibility query filters them, a
course's page shows its summary and current-details checklist, and none of the free text a
clinician typed (nor the patient's id) is readable anywhere on those pages. Screenshots land in
the test's temp folder (printed), so a failure can be looked at.

Needs Debian's `chromium` (`apt-get install chromium`); never downloads a browser. Without it the
test is skipped on a developer's machine and fails in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO

import pytest

from tests.browser import Browser, find_chromium
from tests.integration.test_dev_stack import DevStack

pytestmark = pytest.mark.integration

PATIENT = "pt-MARKER-XYZ"
GOALS = "MARKER-GOALS-123"
SUPPORT_NAME = "MARKER-NAME-456"
SECRETS = (PATIENT, GOALS, SUPPORT_NAME, "MARKER")  # must never be readable in the UI
SUMMARY = "Treatment course: gad, 3 sessions"
COURSE_ID = re.compile(r"course-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

ASSESSMENT = {
    "blood_pressure": {"systolic": 128, "diastolic": 82},
    "heart_rate": 72,
    "contraindications": [],
    "condition": "gad",
    "gad7": 15,
}


@pytest.fixture
def chromium() -> str:
    found = find_chromium()
    if found is None:
        reason = "headless Chromium not installed (apt-get install chromium): the Temporal UI check did not run"
        if os.environ.get("CI"):
            pytest.fail(reason + " -- CI must install it (.ci/run)")
        print(reason)
        pytest.skip(reason)
    return found


class DrainedDevStack(DevStack):
    """`course dev` whose output keeps being read once it is up, so its logs never fill the pipe."""

    def start(self, timeout: float = 120) -> None:
        super().start(timeout)
        assert self.process is not None and self.process.stdout is not None
        self._drain = threading.Thread(target=self._read_all, args=(self.process.stdout,), daemon=True)
        self._drain.start()

    def _read_all(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self._drain.join(timeout=5)
        return code


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DrainedDevStack(tmp_path / "course-data")
    yield stack
    print("course dev output (last lines):\n" + "".join(stack.output[-40:]))  # shown when the test fails
    if stack.process is not None and stack.process.poll() is None:
        assert stack.stop() == 0, "course dev did not stop cleanly:\n" + "".join(stack.output[-30:])


class Clinic:
    """The `course` CLI against the dev stack, the way staff use it."""

    def __init__(self, stack: DevStack, folder: Path) -> None:
        self.stack = stack
        self.folder = folder
        self.tokens: dict[str, str] = {}

    def token(self, role: str) -> str:
        """Each role's staff member signs in with their own token (`course staff add`)."""
        if role not in self.tokens:
            self.tokens[role] = self.stack.staff(f"{role}-ui", role)
        return self.tokens[role]

    def run(self, *args: str, role: str = "operations") -> str:
        done = self.stack.course(*args, token=self.token(role))
        assert done.returncode == 0, f"course {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def open(self) -> str:
        opened = self.run(
            "open", "--patient", PATIENT, "--clinician", "dr-ui", "--therapist", "th-ui",
            "--condition", "gad", "--sessions", "3", "--self-pay", "--json",
        )  # fmt: skip
        return str(json.loads(opened)["course_id"])

    def record(self, course: str, step: str, role: str, data: dict[str, object]) -> None:
        payload = self.folder / f"{course}-{step}.json"
        payload.write_text(json.dumps(data))
        self.run("record", course, step, "--data", str(payload), role=role)

    def listed(self, phase: str) -> set[str]:
        rows = json.loads(self.run("list", "--phase", phase, "--json"))
        return {f"course-{str(row['course_id']).removeprefix('course-')}" for row in rows}


def _settled(clinic: Clinic, expected: dict[str, set[str]], within: float = 20) -> None:
    """Visibility is eventually consistent: wait (bounded) until each phase lists exactly these."""
    deadline = time.monotonic() + within
    seen: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        seen = {phase: clinic.listed(phase) for phase in expected}
        if seen == expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"visibility never settled: expected {expected}, found {seen}")


def _no_patient_data(text: str, where: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"patient data {leaked} readable in the Temporal UI ({where})"


def _shown_courses(text: str) -> set[str]:
    return set(COURSE_ID.findall(text))


def _lists_exactly(expected: set[str], text: str) -> bool:
    return _shown_courses(text) == expected


def test_operations_staff_see_courses_and_no_patient_data_in_the_temporal_ui(
    chromium: str, stack: DevStack, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    stack.start(timeout=60)
    clinic = Clinic(stack, tmp_path)

    assessing = clinic.open()

    preparing = clinic.open()
    clinic.record(preparing, "assessment", "prescriber", ASSESSMENT)
    clinic.record(preparing, "intentions", "therapist", {"goals": GOALS})
    clinic.record(
        preparing, "support-person", "nurse", {"name": SUPPORT_NAME, "relationship": "spouse", "phone": "555-0100"}
    )

    dosing = clinic.open()
    clinic.record(dosing, "assessment", "prescriber", ASSESSMENT)
    now = datetime.now(UTC).isoformat()
    steps: list[tuple[str, str, dict[str, object]]] = [
        ("financial-clearance", "operations", {"self_pay": True, "estimated_cost_acknowledged": True}),
        ("intentions", "therapist", {"goals": GOALS}),
        ("consent", "nurse", {"form_version": "2026-01", "signed_at": now}),
        ("support-person", "nurse", {"name": SUPPORT_NAME, "relationship": "friend", "phone": "555-0100"}),
        (
            "dosing-plan",
            "prescriber",
            {"route": "iv_infusion", "planned_sessions": 3, "starting_dose_mg_per_kg": 0.5, "max_dose_mg_per_kg": 1.0},
        ),
        ("orientation", "nurse", {"topics": ["what_to_expect", "side_effects", "ride_home"]}),
    ]
    for step, role, data in steps:
        clinic.record(dosing, step, role, data)

    phases = {"assessment": f"course-{assessing}", "preparation": f"course-{preparing}", "dosing": f"course-{dosing}"}
    _settled(clinic, {phase: {course} for phase, course in phases.items()})
    workflow = phases["preparation"]  # the course whose page is opened

    base = f"http://localhost:{stack.ui}/namespaces/default/workflows"
    with Browser(chromium) as browser:
        # (a) The list page renders and shows every course by its opaque workflow id.
        browser.goto(base)
        text = browser.wait_for_text(lambda t: set(phases.values()) <= _shown_courses(t), "every course in the list")
        browser.screenshot(shots / "list.png")
        assert "TreatmentCourse" in text
        _no_patient_data(text, "workflow list")

        # (b) The same visibility query staff paste into the search box filters the list exactly.
        for phase in ("preparation", "dosing"):
            query = urllib.parse.quote(f'CoursePhase="{phase}"')
            browser.goto(f"{base}?query={query}")
            text = browser.wait_for_text(partial(_lists_exactly, {phases[phase]}), f"only the {phase} course listed")
            browser.screenshot(shots / f"list-{phase}.png")
            _no_patient_data(text, f"list filtered by CoursePhase={phase}")

        # (c) A course's page: its summary and current checklist are readable, patient data is not.
        browser.goto(f"{base}/{workflow}")
        text = browser.wait_for_text(
            lambda t: workflow in t and "Input" in t and "treatment-courses" in t, "the course's page"
        )
        browser.screenshot(shots / "detail.png")
        _no_patient_data(text, "course page (input, timeline)")
        assert "could not connect" not in text.lower(), "the UI opens on a codec error banner"

        browser.click("#history-tab")
        text = browser.wait_for_text(lambda t: "Update Accepted" in t, "the event history with the updates")
        browser.screenshot(shots / "history.png")
        _no_patient_data(text, "event history")

        browser.click("#search-attributes-tab")
        text = browser.wait_for_text(lambda t: "CoursePhase" in t, "the course's search attributes")
        browser.screenshot(shots / "search-attributes.png")
        assert re.search(r'"CoursePhase":\s*"preparation"', text), "CoursePhase is not shown as preparation"
        _no_patient_data(text, "search attributes")

        browser.click("#user-metadata-tab")
        text = browser.wait_for_text(lambda t: "Current Details" in t, "the user metadata tab")
        try:
            text = browser.wait_for_text(
                lambda t: SUMMARY in t and re.search(r"(?m)^\s*preparation\b", t) is not None,
                "the summary and the current-details checklist (starting with **preparation**)",
            )
        finally:
            browser.screenshot(shots / "user-metadata.png")
            _no_patient_data(browser.text(), "summary and current details")
