"""A nurse uses the clinician console in a real (headless) Chromium: sign in with a token, record
consent through the generated form, see the checklist update; a refused step shows the rule's
message. Screenshots go to $ARTIFACTS_DIR/console (default artifacts/console) for CI to keep.

Debian's `chromium`, driven by tests/browser.py; never downloads a browser.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from api.server import serving
from course.commands import Role
from tests.api.conftest import ASSESSMENT, Clinic
from tests.browser import Browser, artifacts_dir, chromium_or_skip, fill

pytestmark = pytest.mark.integration


def _nurse_records_consent(chromium: str, base: str, token: str, course: str) -> None:
    shots = artifacts_dir("console")
    print(f"screenshots: {shots}")
    with Browser(chromium) as browser:
        browser.goto(f"{base}/console")
        browser.wait_for_text(lambda t: "Staff token" in t, "the sign-in page")
        browser.screenshot(shots / "1-sign-in.png")
        fill(browser, "input[name=token]", token)
        browser.click("form[action='/console/login'] button")
        browser.wait_for_text(lambda t: "Open courses" in t and course[:8] in t, "the course in the nurse's list")
        browser.screenshot(shots / "2-courses.png")

        browser.click(f"a[href='/console/courses/{course}']")
        text = browser.wait_for_text(lambda t: "Checklist" in t and "Timeline" in t, "the course page")
        assert re.search(r"○ consent\s+pending", text), "consent should be pending before the form is sent"
        browser.screenshot(shots / "3-course.png")

        browser.click(f"a[href='/console/courses/{course}/steps/consent']")
        browser.wait_for_text(lambda t: "Record consent" in t and "Form Version" in t, "the consent form")
        fill(browser, "input[name=form_version]", "2026-01")
        fill(browser, "input[name=signed_at]", "2026-01-05T09:30")
        browser.screenshot(shots / "4-consent-form.png")
        browser.click("#submit")
        text = browser.wait_for_text(lambda t: "Recorded consent." in t, "the course page after recording")
        assert re.search(r"✔ consent\s+done", text), "the checklist should show consent done"
        assert "ConsentRecorded" in text and "rn-api (nurse)" in text
        browser.screenshot(shots / "5-consent-recorded.png")

        # A second consent on an outdated form: the rule refuses it and says which form is current.
        browser.goto(f"{base}/console/courses/{course}/steps/consent")
        browser.wait_for_text(lambda t: "Form Version" in t, "the consent form again")
        fill(browser, "input[name=form_version]", "2019-01")
        browser.click("#submit")
        text = browser.wait_for_text(lambda t: "Not recorded:" in t, "the rule's message")
        browser.screenshot(shots / "6-refused.png")
        assert "2026-01" in text, text[:2000]
        assert not browser.console, browser.console


async def test_a_nurse_records_consent_in_the_console_and_sees_a_refusal(clinic: Clinic) -> None:
    chromium = chromium_or_skip()
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    async with serving(clinic.app, "127.0.0.1", 0) as base:
        await asyncio.to_thread(_nurse_records_consent, chromium, base, clinic.tokens[Role.NURSE], course)
