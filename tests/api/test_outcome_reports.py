"""The outcome report through the API, the CLI's formats and a real (headless) Chromium.

Courses are seeded into a database of their own as event streams (tests/outcome_cohort.py: made by
the course's own decider, appended through PostgresEventStore.append), so every count is known; the
report needs no worker. Screenshots go to $TEST_ARTIFACTS/outcomes (default test-artifacts/outcomes).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from activities.event_store import PostgresEventStore
from api.app import create_app
from api.server import serving
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from cli.main import run as course_cli
from cli.report_cmd import as_csv, as_table
from course.cohorts import OutcomeReport
from course.commands import Role
from course.events import CourseOpened, EventEnvelope
from tests.api.conftest import BASE, STAFF
from tests.browser import Browser, artifacts_dir, chromium_or_skip, fill
from tests.conftest import task_queue
from tests.integration.staff_cli import COURSE
from tests.outcome_cohort import FEBRUARY, HAND_COHORT, fresh_database, seed, streams

pytestmark = pytest.mark.integration


@dataclass
class Reports:
    http: httpx.AsyncClient
    app: FastAPI
    tokens: dict[Role, str]
    pool: asyncpg.Pool

    async def get(self, role: Role, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return await self.http.get("/reports/outcomes", params=params, headers=headers)


@pytest_asyncio.fixture
async def reports(dev_env: WorkflowEnvironment) -> AsyncIterator[Reports]:
    async with fresh_database() as pool:
        tokens = {role: new_token() for role in Role}
        staff = ConfiguredStaff([(STAFF[role], token_digest(tokens[role])) for role in Role])
        # The report reads PostgreSQL only: the course client is there because the app needs one.
        app = create_app(CourseClient(dev_env.client, task_queue()), staff, pool, secure_cookies=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Origin": BASE}) as http:
            yield Reports(http, app, tokens, pool)


def identifiers(built: list[list[EventEnvelope]]) -> set[str]:
    """Everything that names a course or a patient in the seeded streams."""
    found: set[str] = set()
    for stream in built:
        opened = stream[0].event
        assert isinstance(opened, CourseOpened)
        found |= {stream[0].stream_id, str(opened.course_id), opened.course_id.hex, opened.patient_id}
    return found


async def test_the_report_through_the_api(reports: Reports) -> None:
    empty = await reports.get(Role.PRESCRIBER)
    assert empty.status_code == 200 and empty.json()["courses"] == 0
    built = streams()
    await seed(PostgresEventStore(reports.pool), built)

    whole = await reports.get(Role.OPERATIONS)
    assert whole.status_code == 200
    report = OutcomeReport.model_validate(whole.json())
    assert (report.courses, report.overall.responders, report.overall.response_rate) == (12, 6, 0.6)
    assert not any(name in whole.text for name in identifiers(built))

    february = await reports.get(Role.THERAPIST, since=FEBRUARY.isoformat())
    assert february.json()["courses"] == 6
    later = await reports.get(Role.THERAPIST, since=datetime.now(UTC).isoformat())
    assert later.json()["courses"] == 0

    malformed = await reports.get(Role.PRESCRIBER, since="last tuesday")
    assert malformed.status_code == 422
    for role in (Role.NURSE, Role.CLINIC_ADMIN):
        refused = await reports.get(role)
        assert refused.status_code == 403, role
    assert (await reports.get(Role.NURSE)).json()["code"] == "report_not_permitted"
    logged = await reports.pool.fetch("SELECT staff_id, what FROM access_log WHERE course_id IS NULL ORDER BY id")
    assert [r["staff_id"] for r in logged] == [STAFF[r].id for r in (Role.PRESCRIBER, Role.OPERATIONS)] + [
        STAFF[Role.THERAPIST].id
    ] * 2
    assert {r["what"] for r in logged} == {"report_outcomes"}


async def test_the_cli_formats_and_its_refusals(reports: Reports) -> None:
    await seed(PostgresEventStore(reports.pool), streams())
    report = OutcomeReport.model_validate((await reports.get(Role.PRESCRIBER)).json())
    table = as_table(report)
    assert "12 course(s)" in table and "6 (60%)" in table and "suppressed (too few courses)" in table
    assert "maintenance" in table and "<5" in table  # the funnel's withheld counts
    rows = list(csv.DictReader(io.StringIO(as_csv(report))))
    overall = rows[0]
    assert (overall["breakdown"], overall["courses"], overall["responders"], overall["response_rate"]) == (
        "all", "12", "6", "0.6",
    )  # fmt: skip
    intranasal = next(r for r in rows if r["cohort"] == "intranasal")
    assert intranasal["suppressed"] == "True" and intranasal["courses"] == "" and intranasal["response_rate"] == ""
    empty = OutcomeReport.model_validate((await reports.get(Role.PRESCRIBER, since="2099-01-01T00:00:00Z")).json())
    assert (
        as_table(empty)
        == "No course was opened since 2099-01-01 00:00 UTC: there is nothing to report for this period."
    )
    # A malformed --since is refused before anything is asked (no API is running here): exit 2.
    assert await asyncio.to_thread(course_cli, ["report", "outcomes", "--since", "yesterday-ish"]) == 2


_CHARTS = "Array.from(document.querySelectorAll('figure > svg'))"


def _read_the_page(chromium: str, base: str, tokens: dict[Role, str], hidden: set[str]) -> None:
    shots = artifacts_dir("outcomes")
    print(f"screenshots: {shots}")
    with Browser(chromium) as browser:
        browser.goto(f"{base}/console/login")
        browser.wait_for_text(lambda t: "Staff token" in t, "the sign-in page")
        fill(browser, "input[name=token]", tokens[Role.PRESCRIBER])
        browser.click("form[action='/console/login'] button")
        browser.wait_for_text(lambda t: "Outcomes" in t, "signed in")
        browser.goto(f"{base}/console/reports/outcomes")
        browser.wait_for_text(lambda t: "Response rate by integration sessions per dose" in t, "the report")
        # The page arrives in pieces on a loaded machine: read it once the whole document is in
        # (CI once read it up to the third chart, before the tables).
        for _ in range(80):
            if browser.evaluate("document.readyState") == "complete":
                break
            time.sleep(0.25)
        text = browser.text()
        browser.screenshot(shots / "1-outcomes.png", full_page=True)
        html = str(browser.evaluate("document.documentElement.outerHTML"))
        charts = browser.evaluate(f"{_CHARTS}.map(s => s.getAttribute('aria-labelledby'))")
        assert charts == ["trajectory-title", "response-title", "funnel-title"], charts
        drawn = browser.evaluate(f"{_CHARTS}.map(s => s.getBoundingClientRect().height)")
        assert all(height > 100 for height in drawn), drawn  # laid out, not an empty element
        for label in ("Weeks since the first dose", "Mean GAD-7 score (0-21)", "Integration sessions per dose",
                      "Response rate (%", "Stage reached", "Courses"):  # fmt: skip
            assert label in html, label
        assert "<script" not in html.lower()
        leaked = {name for name in hidden if name in html}
        assert not leaked, leaked
        assert "60 course(s)" in text and "iv_infusion\t30\t30\t20 (67%)" in text and "suppressed:" not in text
        assert "assessed\t60\t5\t0" in text and "integrated\t50\t0\t5" in text  # C2's lapses, B4's withdrawals

        browser.goto(f"{base}/console/reports/outcomes?since=2099-01-01")
        empty = browser.wait_for_text(lambda t: "nothing to report" in t, "the empty period")
        assert "No course was opened since" in empty
        assert browser.evaluate("document.querySelectorAll('svg').length") == 0
        browser.screenshot(shots / "2-empty-period.png")


async def test_the_outcomes_page_draws_its_charts_and_names_nobody(reports: Reports) -> None:
    chromium = chromium_or_skip()
    built = streams(HAND_COHORT * 5)  # 60 courses: every cohort is shown, and 5 lapses and 5 withdrawals
    await seed(PostgresEventStore(reports.pool), built)
    async with serving(reports.app, "127.0.0.1", 0) as base:
        await asyncio.to_thread(_read_the_page, chromium, base, reports.tokens, identifiers(built))


async def test_a_nurse_is_told_who_reads_the_report(reports: Reports) -> None:
    chromium = chromium_or_skip()
    async with serving(reports.app, "127.0.0.1", 0) as base:

        def as_nurse() -> str:
            with Browser(chromium) as browser:
                browser.goto(f"{base}/console/login")
                browser.wait_for_text(lambda t: "Staff token" in t, "the sign-in page")
                fill(browser, "input[name=token]", reports.tokens[Role.NURSE])
                browser.click("form[action='/console/login'] button")
                browser.wait_for_text(lambda t: "Outcomes" in t, "signed in")
                browser.goto(f"{base}/console/reports/outcomes")
                return browser.wait_for_text(lambda t: "read by" in t, "the refusal")

        said = await asyncio.to_thread(as_nurse)
    assert re.search(r"read by operations, prescriber, therapist", said), said


async def _course(environ: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *COURSE, *args, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_course_report_outcomes_as_staff_run_it(reports: Reports, tmp_path: Path) -> None:
    """The CLI as a subprocess, through the served API, as the token's owner."""
    async with serving(reports.app, "127.0.0.1", 0) as url:
        environ = {**os.environ, "API_URL": url, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        environ["COURSE_TOKEN"] = reports.tokens[Role.THERAPIST]
        code, out, _ = await _course(environ, "report", "outcomes")
        assert (code, out.strip()) == (0, "No course has been opened in this clinic yet: there is nothing to report.")
        await seed(PostgresEventStore(reports.pool), streams())
        code, out, _ = await _course(environ, "report", "outcomes", "--since", "2026-02-01", "--format", "json")
        assert code == 0 and OutcomeReport.model_validate_json(out).courses == 6
        code, out, _ = await _course(environ, "report", "outcomes", "--format", "csv")
        assert code == 0 and out.splitlines()[1].startswith("all,all courses,False,12,10,6,0.6,3,0.3,")
        code, out, _ = await _course(environ, "report", "outcomes", "--since", "4w")
        assert code == 0 and "nothing to report for this period" in out  # the cohort opened in January and February
        code, _, err = await _course(environ, "report", "outcomes", "--since", "soon")
        assert code == 2 and "--since 'soon' is not a time" in err
        environ["COURSE_TOKEN"] = reports.tokens[Role.NURSE]
        code, _, err = await _course(environ, "report", "outcomes")
        assert code == 4 and "report_not_permitted" in err, (code, err)  # refused
