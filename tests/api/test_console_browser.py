"""A nurse uses the clinician console in a real (headless) Chromium: sign in with a token, record
consent through the generated form, see the checklist update; a refused step shows the rule's
message. Signing out ends the session (the old cookie, put back, opens nothing) and an idle
session returns to the sign-in page with a sentence; every page keeps to its Content-Security-
Policy; /docs renders offline from the service's own files. A nurse on a clinic away from UTC
checks a patient in and records the dose from forms that read in words, start at the course's
session, route and dose, and show the clinic's zone. Screenshots go to $TEST_ARTIFACTS/console
(default test-artifacts/console) for CI to keep.

Debian's `chromium`, driven by tests/browser.py; never downloads a browser.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable

import asyncpg
import pytest

from api.console import LOCAL_COOKIE
from api.server import serving
from course.commands import Role
from tests.api.conftest import ASSESSMENT, Clinic, console_app, eventually
from tests.browser import Browser, artifacts_dir, chromium_or_skip, fill

pytestmark = pytest.mark.integration


# Injected by DevTools (not subject to the page's CSP): what the page's policy blocked, if anything.
_WATCH_CSP = (
    "document.addEventListener('securitypolicyviolation', e => "
    "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"
)


def _watch_csp(browser: Browser) -> None:
    browser.send("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH_CSP})


def _csp_violations(browser: Browser) -> list[str]:
    return list(browser.evaluate("window.__csp || []"))


def _nurse_records_consent(chromium: str, base: str, token: str, course: str) -> None:
    shots = artifacts_dir("console")
    print(f"screenshots: {shots}")
    with Browser(chromium) as browser:
        _watch_csp(browser)
        browser.goto(f"{base}/console")
        browser.wait_for_text(lambda t: "Staff token" in t, "the sign-in page")
        browser.screenshot(shots / "1-sign-in.png")
        fill(browser, "input[name=token]", token)
        browser.click("form[action='/console/login'] button")
        browser.wait_for_text(
            lambda t: "Courses in preparation or dosing" in t and course[:8] in t, "the course in the nurse's list"
        )
        browser.screenshot(shots / "2-courses.png")

        browser.click(f"a[href='/console/courses/{course}']")
        text = browser.wait_for_text(lambda t: "Checklist" in t and "Timeline" in t, "the course page")
        assert re.search(r"○ consent\s+pending", text), "consent should be pending before the form is sent"
        browser.screenshot(shots / "3-course.png")

        browser.click(f"a[href='/console/courses/{course}/steps/consent']")
        browser.wait_for_text(lambda t: "Record consent" in t and "Consent form version" in t, "the consent form")
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
        browser.wait_for_text(lambda t: "Consent form version" in t, "the consent form again")
        fill(browser, "input[name=form_version]", "2019-01")
        browser.click("#submit")
        text = browser.wait_for_text(lambda t: "Not recorded:" in t, "the rule's message")
        browser.screenshot(shots / "6-refused.png")
        assert "2026-01" in text, text[:2000]
        assert not browser.console, browser.console
        # The style sheet is the service's own file, and the CSP blocked nothing on any page.
        assert browser.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == (
            "rgb(35, 57, 93)"
        )
        assert not _csp_violations(browser), _csp_violations(browser)


def _session_cookie(browser: Browser) -> dict[str, object]:
    cookies = browser.send("Network.getCookies")["cookies"]
    return next(c for c in cookies if c["name"] == LOCAL_COOKIE)


def _sign_in(browser: Browser, base: str, token: str) -> None:
    browser.goto(f"{base}/console/login")
    browser.wait_for_text(lambda t: "Staff token" in t, "the sign-in page")
    fill(browser, "input[name=token]", token)
    browser.click("form[action='/console/login'] button")
    browser.wait_for_text(lambda t: "Sign out" in t, "the signed-in console")


def _nurse_signs_out_and_idles(chromium: str, base: str, token: str, age: Callable[[str], None]) -> None:
    shots = artifacts_dir("console")
    with Browser(chromium) as browser:
        _watch_csp(browser)
        _sign_in(browser, base, token)
        cookie = _session_cookie(browser)
        assert cookie["value"] != token and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        browser.click("form[action='/console/logout'] button")
        browser.wait_for_text(lambda t: "You signed out" in t and "Staff token" in t, "the sign-in page")
        browser.screenshot(shots / "7-signed-out.png")
        assert not [c for c in browser.send("Network.getCookies")["cookies"] if c["name"] == LOCAL_COOKIE]
        # The old cookie, put back (copied before sign-out): it opens nothing.
        browser.send(
            "Network.setCookie",
            {"name": LOCAL_COOKIE, "value": cookie["value"], "url": base, "httpOnly": True, "sameSite": "Strict"},
        )
        browser.goto(f"{base}/console")
        browser.wait_for_text(lambda t: "You signed out" in t and "Staff token" in t, "the sign-in page again")
        assert "Sign out" not in browser.text()

        # Signed in again, then 31 minutes without a request (aged in the database, no sleep).
        _sign_in(browser, base, token)
        age(str(_session_cookie(browser)["value"]))
        browser.click("a[href='/console']")
        browser.wait_for_text(
            lambda t: "Your session ended after 30 minutes without activity; sign in again." in t, "the idle notice"
        )
        browser.screenshot(shots / "8-idle.png")
        assert not browser.console, browser.console
        assert not _csp_violations(browser), _csp_violations(browser)


def _docs_render_offline(chromium: str, base: str) -> None:
    with Browser(chromium) as browser:
        _watch_csp(browser)
        browser.goto(f"{base}/docs")
        browser.wait_for_text(
            lambda t: "Treatment courses" in t and "/courses/{course_id}/steps/consent" in t, "the Swagger UI"
        )
        browser.screenshot(artifacts_dir("console") / "9-docs.png")
        loaded = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(url.startswith(base + "/") for url in loaded), loaded
        assert not browser.console, browser.console
        assert not _csp_violations(browser), _csp_violations(browser)


async def test_a_nurse_records_consent_in_the_console_and_sees_a_refusal(clinic: Clinic) -> None:
    chromium = chromium_or_skip()
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)

    async def in_the_nurses_list() -> bool:
        # Nurses list courses in preparation by the phase Temporal's visibility holds, which
        # follows the step a moment later: the page is rendered once, so wait for it first.
        listed = await clinic.call("GET", "/courses", Role.NURSE)
        return course in listed.text

    await eventually(in_the_nurses_list, "the course in preparation listed for the nurse")
    async with serving(clinic.app, "127.0.0.1", 0) as base:
        await asyncio.to_thread(_nurse_records_consent, chromium, base, clinic.tokens[Role.NURSE], course)


async def test_signing_out_and_idling_end_the_session_in_the_browser(clinic: Clinic, pg_pool: asyncpg.Pool) -> None:
    chromium = chromium_or_skip()
    loop = asyncio.get_running_loop()

    def age(session: str) -> None:  # from the browser's thread, on the test's loop
        aged = pg_pool.execute(
            "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' WHERE session_sha256 = $1",
            hashlib.sha256(session.encode()).digest(),
        )
        assert asyncio.run_coroutine_threadsafe(aged, loop).result(30) == "UPDATE 1"

    async with serving(clinic.app, "127.0.0.1", 0) as base:
        await asyncio.to_thread(_nurse_signs_out_and_idles, chromium, base, clinic.tokens[Role.NURSE], age)


async def test_the_api_docs_render_from_the_service_alone(clinic: Clinic) -> None:
    chromium = chromium_or_skip()
    async with serving(clinic.app, "127.0.0.1", 0) as base:
        await asyncio.to_thread(_docs_render_offline, chromium, base)


ZONE = "America/New_York"


def _selected_words(browser: Browser, name: str) -> str:
    """The words a person reads in a select: the text of its chosen option, not its code."""
    return str(browser.evaluate(f"document.querySelector('select[name=\"{name}\"]').selectedOptions[0].text"))


def _value(browser: Browser, name: str) -> str:
    return str(browser.evaluate(f"document.querySelector('[name=\"{name}\"]').value"))


def _nurse_doses_from_the_forms(chromium: str, base: str, token: str, course: str) -> None:
    shots = artifacts_dir("console")
    with Browser(chromium) as browser:
        _watch_csp(browser)
        _sign_in(browser, base, token)
        text = browser.wait_for_text(lambda t: "pt-api-1" in t and course[:8] in t, "the course in the list")
        assert f"Next due ({ZONE})" in text and "Patient" in text
        browser.screenshot(shots / "forms-1-courses.png")

        browser.click(f"a[href='/console/courses/{course}']")
        text = browser.wait_for_text(lambda t: "Checklist" in t and "Other steps" in t, "the course page")
        assert "Patient pt-api-1" in text and "Route: IV infusion, dose 0.5 mg/kg." in text
        assert f"When ({ZONE})" in text
        first = browser.evaluate("document.querySelector('#next-steps a').textContent")
        assert first == "Record check-in", first
        assert "consent" not in str(browser.evaluate("document.querySelector('#other-steps').textContent"))
        browser.screenshot(shots / "forms-2-course.png", full_page=True)

        browser.click("#next-steps a")
        text = browser.wait_for_text(lambda t: "Pre-dose vitals" in t, "the check-in form")
        assert "Patient pt-api-1" in text and f"Times are the clinic's ({ZONE})" in text
        assert "Systolic blood pressure" in text and "mmHg" in text and "Beats per minute" in text
        assert _value(browser, "session_number") == "1"  # the session the course is at
        fill(browser, "input[name='vitals.systolic']", "124")
        fill(browser, "input[name='vitals.diastolic']", "80")
        fill(browser, "input[name='vitals.heart_rate']", "70")
        browser.click("input[name=ride_home_arranged]")
        browser.screenshot(shots / "forms-3-check-in.png", full_page=True)
        browser.click("#submit")
        browser.wait_for_text(lambda t: "Recorded check-in." in t, "the course page after check-in")

        browser.click(f"a[href='/console/courses/{course}/steps/dosing-session']")
        text = browser.wait_for_text(lambda t: "Post-dose vitals" in t, "the dosing-session form")
        assert "Dose" in text and "mg/kg" in text and "Side effect 1" in text and "Patient response" in text
        assert "PatientResponse" not in text and "SideEffectKind" not in text and "Dose Mg Per Kg" not in text
        assert _selected_words(browser, "route") == "IV infusion" and _value(browser, "route") == "iv_infusion"
        assert _value(browser, "dose_mg_per_kg") == "0.5" and _value(browser, "session_number") == "1"
        fill(browser, "input[name='post_vitals.systolic']", "130")
        fill(browser, "input[name='post_vitals.diastolic']", "84")
        fill(browser, "input[name='post_vitals.heart_rate']", "76")
        fill(browser, "select[name=patient_response]", "better")
        assert _selected_words(browser, "patient_response") == "Better than before"
        browser.screenshot(shots / "forms-4-dosing-session.png", full_page=True)

        # The nurse types the wrong session: the rule refuses it, says which, and keeps her values.
        fill(browser, "input[name=session_number]", "2")
        browser.click("#submit")
        text = browser.wait_for_text(lambda t: "Not recorded:" in t, "the refusal")
        assert "The next dosing session is number 1, not 2." in text and "Patient pt-api-1" in text
        assert _value(browser, "post_vitals.systolic") == "130" and _selected_words(browser, "route") == "IV infusion"
        browser.screenshot(shots / "forms-5-refused.png", full_page=True)
        assert not browser.console, browser.console
        assert not _csp_violations(browser), _csp_violations(browser)
    print(f"screenshots: {shots}")


async def test_a_nurse_checks_in_and_doses_from_forms_in_words_in_the_clinics_zone(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    chromium = chromium_or_skip()
    course = await clinic.prepared()

    async def in_the_nurses_list() -> bool:
        listed = await clinic.call("GET", "/courses", Role.NURSE)
        return course in listed.text

    await eventually(in_the_nurses_list, "the course in dosing listed for the nurse")
    async with serving(console_app(clinic, pg_pool, ZONE), "127.0.0.1", 0) as base:
        await asyncio.to_thread(_nurse_doses_from_the_forms, chromium, base, clinic.tokens[Role.NURSE], course)
