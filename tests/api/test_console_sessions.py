"""Console sessions on the real stack: the cookie is a session id (only its hash is stored), not
the token; sessions end when idle, at the absolute limit, at sign-out (every one of the member's)
and when the token is revoked; console POSTs from another origin are refused; console pages and
course reads are never cached; the cookie is Secure unless local development turns it off; /docs
is served from the service itself."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.console import COOKIE, LOCAL_COOKIE
from api.staff import AnyOf, ConfiguredStaff, PostgresStaff, new_token, token_digest
from application.courses import CourseClient
from course.commands import Actor, Role
from tests.api.conftest import ASSESSMENT, BASE, STAFF, Clinic
from worker.dev import local_settings
from worker.settings import Settings

COURSE = [sys.executable, "-c", "from cli.main import main; main()"]
PUBLIC = "https://course.clinic.example"
PROBE = "/console/courses/3f1e9c2a-0000-4000-8000-000000000000/steps/consent"  # a form: no Temporal call


@asynccontextmanager
async def browser(app: FastAPI, origin: str | None = BASE) -> AsyncIterator[httpx.AsyncClient]:
    """One browser: its own cookie jar, and the Origin it sends with a POST from the console."""
    headers = {"Origin": origin} if origin else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers) as http:
        yield http


async def sign_in(http: httpx.AsyncClient, token: str) -> str:
    response = await http.post("/console/login", data={"token": token})
    assert response.status_code == 303 and response.headers["location"] == "/console", response.text
    return http.cookies[LOCAL_COOKIE]


def replay(http: httpx.AsyncClient, cookie: str) -> None:
    """The browser sends this cookie value (one kept from earlier, or a forged one) and no other."""
    http.cookies.clear()
    http.cookies.set(LOCAL_COOKIE, cookie, domain="testserver.local")


async def signed_in(http: httpx.AsyncClient) -> bool:
    response = await http.get(PROBE)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


async def ended_because(http: httpx.AsyncClient) -> str:
    """Where a signed-out browser lands: the sign-in page and the sentence it shows."""
    response = await http.get(PROBE)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
    page = await http.get(response.headers["location"])
    found = re.search(r'<p class="notice" role="status" id="ended">([^<]+)</p>', page.text)
    return found.group(1) if found else ""


def with_table(clinic: Clinic, pg_pool: asyncpg.Pool, **settings: Any) -> FastAPI:
    """The clinic's app, with the `staff` table too (what `course staff add|revoke` manage)."""
    staff = AnyOf(
        ConfiguredStaff([(STAFF[role], token_digest(clinic.tokens[role])) for role in Role]), PostgresStaff(pg_pool)
    )
    return create_app(clinic.courses, staff, pg_pool, **({"secure_cookies": False} | settings))


@pytest.mark.integration
async def test_the_cookie_carries_a_session_id_and_the_database_only_its_hash(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    token = clinic.tokens[Role.NURSE]
    async with browser(clinic.app) as http:
        session = await sign_in(http, token)
        assert session != token and token not in session and len(session) >= 43
        row = await pg_pool.fetchrow(
            "SELECT * FROM console_sessions WHERE session_sha256 = $1", hashlib.sha256(session.encode()).digest()
        )
        assert row is not None
        assert (row["staff_id"], row["role"], row["ended_at"]) == ("rn-api", "nurse", None)
        assert bytes(row["token_sha256"]) == token_digest(token)
        stored = " ".join(str(value) for value in dict(row).values())
        assert session not in stored and token not in stored
        assert await signed_in(http)
        # The token itself is no cookie: sent as one, it opens nothing.
        replay(http, token)
        assert not await signed_in(http)


@pytest.mark.integration
async def test_an_idle_or_too_old_session_returns_to_sign_in_and_says_why(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    async with browser(clinic.app) as http:
        session = await sign_in(http, clinic.tokens[Role.NURSE])
        digest = hashlib.sha256(session.encode()).digest()
        await pg_pool.execute(
            "UPDATE console_sessions SET last_seen_at = now() - interval '29 minutes' WHERE session_sha256 = $1",
            digest,
        )
        assert await signed_in(http)  # within the window: still signed in, and seen now
        idle_for = await pg_pool.fetchval(
            "SELECT now() - last_seen_at FROM console_sessions WHERE session_sha256 = $1", digest
        )
        assert idle_for.total_seconds() < 60
        await pg_pool.execute(
            "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' WHERE session_sha256 = $1",
            digest,
        )
        said = await ended_because(http)
        assert said == "Your session ended after 30 minutes without activity; sign in again."
        assert LOCAL_COOKIE not in http.cookies  # the redirect deleted it
        assert (
            await pg_pool.fetchval("SELECT ended_reason FROM console_sessions WHERE session_sha256 = $1", digest)
            == "idle"
        )
        replay(http, session)  # kept by someone: still over
        assert not await signed_in(http)

        session = await sign_in(http, clinic.tokens[Role.NURSE])
        await pg_pool.execute(
            "UPDATE console_sessions SET created_at = now() - interval '10 hours 1 minute' WHERE session_sha256 = $1",
            hashlib.sha256(session.encode()).digest(),
        )
        assert await ended_because(http) == "Your session ended 10 hours after you signed in; sign in again."


@pytest.mark.integration
async def test_signing_out_ends_every_session_of_the_member_and_no_one_elses(clinic: Clinic) -> None:
    async with browser(clinic.app) as ward, browser(clinic.app) as office, browser(clinic.app) as colleague:
        old = await sign_in(ward, clinic.tokens[Role.NURSE])
        await sign_in(office, clinic.tokens[Role.NURSE])
        await sign_in(colleague, clinic.tokens[Role.THERAPIST])
        out = await ward.post("/console/logout")
        assert out.status_code == 303 and out.headers["location"] == "/console/login?ended=signed_out"
        assert LOCAL_COOKIE not in ward.cookies
        replay(ward, old)  # the old cookie, replayed
        assert await ended_because(ward) == "You signed out (here or on another device); sign in again to continue."
        assert await ended_because(office) == "You signed out (here or on another device); sign in again to continue."
        assert await signed_in(colleague)
        await sign_in(ward, clinic.tokens[Role.NURSE])  # signing in again opens a new session
        assert await signed_in(ward)


@pytest.mark.integration
async def test_revoking_or_replacing_a_token_ends_its_sessions(
    clinic: Clinic, pg_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    app = with_table(clinic, pg_pool)
    staff = PostgresStaff(pg_pool)
    token = await staff.add("rn-revoked", Role.NURSE)
    async with browser(app) as ward, browser(app) as office:
        await sign_in(ward, token)
        await sign_in(office, token)
        process = await asyncio.create_subprocess_exec(
            *COURSE,
            "staff",
            "revoke",
            "rn-revoked",
            env={**os.environ, "DATABASE_URL": pg_dsn},
            stdout=asyncio.subprocess.PIPE,
        )
        assert await asyncio.wait_for(process.wait(), 60) == 0
        reasons = await pg_pool.fetch("SELECT ended_reason FROM console_sessions WHERE staff_id = 'rn-revoked'")
        assert [r["ended_reason"] for r in reasons] == ["token_revoked", "token_revoked"]
        for http in (ward, office):
            assert "revoked" in await ended_because(http)

        # A session row somehow left open: the token is checked on every request all the same.
        token = await staff.add("rn-revoked", Role.NURSE)
        await sign_in(ward, token)
        await pg_pool.execute("UPDATE staff SET revoked_at = now() WHERE staff_id = 'rn-revoked'")
        assert "revoked" in await ended_because(ward)

        # A new token for the member (a lost phone): the sessions of the old one end.
        token = await staff.add("rn-revoked", Role.NURSE)
        await sign_in(ward, token)
        await staff.add("rn-revoked", Role.THERAPIST)
        assert "replaced" in await ended_because(ward)


@pytest.mark.integration
async def test_console_pages_and_course_reads_are_never_cached_and_pages_have_a_strict_csp(clinic: Clinic) -> None:
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    async with browser(clinic.app) as http:
        pages = [await http.get("/console/login")]
        await sign_in(http, clinic.tokens[Role.PRESCRIBER])
        pages += [await http.get(f"/console/courses/{course}"), await http.get(f"/console/courses/{course}/steps/hold")]
        pages.append(await http.get("/console"))
    for page in pages:
        assert page.status_code == 200, page.url
        assert page.headers["cache-control"] == "no-store"
        csp = page.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'none'", "frame-ancestors 'none'", "object-src 'none'"):
            assert directive in csp, (page.url, csp)
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert "<script" not in page.text and "style=" not in page.text and "<style" not in page.text
    sheet = await clinic.http.get("/static/console.css")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    for path in (f"/courses/{course}", f"/courses/{course}/events", f"/courses/{course}/notifications", "/courses"):
        read = await clinic.call("GET", path)
        assert read.status_code == 200, path
        assert read.headers["cache-control"] == "no-store", path
        assert read.headers["x-content-type-options"] == "nosniff"
        assert read.headers["referrer-policy"] == "no-referrer"
    refused = await clinic.call("GET", f"/courses/{course}/events", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"


@pytest.mark.integration
async def test_a_post_from_another_origin_is_refused_and_the_public_origin_accepted(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    """Behind a TLS proxy the request's own URL says http://testserver; the browser says the public origin."""
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    app = with_table(clinic, pg_pool, public_origin=PUBLIC)
    token = clinic.tokens[Role.NURSE]
    for origin in ("https://elsewhere.example", BASE, "null", "https://course.clinic.example.evil.example"):
        async with browser(app, origin) as http:
            refused = await http.post("/console/login", data={"token": token})
            assert refused.status_code == 403 and "set-cookie" not in refused.headers, origin
    async with browser(app, None) as http:  # neither Origin nor Referer
        assert (await http.post("/console/login", data={"token": token})).status_code == 403
        referred = {"Referer": f"{PUBLIC}/console/login"}
        assert (await http.post("/console/login", data={"token": token}, headers=referred)).status_code == 303
        elsewhere = {"Referer": "https://elsewhere.example/console/login"}
        assert (await http.post("/console/logout", headers=elsewhere)).status_code == 403
        assert await signed_in(http)
    async with browser(app, PUBLIC) as http:
        await sign_in(http, token)
        consent = {"form_version": "2026-01", "signed_at": "2026-01-05T09:30", "request_id": "consent-origin-1"}
        forged = await http.post(
            f"/console/courses/{course}/steps/consent", data=consent, headers={"Origin": "https://elsewhere.example"}
        )
        assert forged.status_code == 403
        assert "consent" not in [s.name for s in (await clinic.courses.status(course)).steps if s.status == "done"]
        recorded = await http.post(f"/console/courses/{course}/steps/consent", data=consent)
        assert recorded.status_code == 303, recorded.text
        out = await http.post("/console/logout", headers={"Origin": "https://elsewhere.example"})
        assert out.status_code == 403 and await signed_in(http)  # another site cannot sign you out either


async def test_the_cookie_is_secure_by_default_and_only_course_dev_turns_that_off(pg_pool: asyncpg.Pool) -> None:
    token = new_token()
    staff = ConfiguredStaff([(Actor(id="rn-secure", role=Role.NURSE), token_digest(token))])
    app = create_app(cast(CourseClient, None), staff, pg_pool)  # the defaults, as `course api` has them
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        response = await http.post("/console/login", data={"token": token}, headers={"Origin": "https://testserver"})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    name, _, value = cookie.split(";")[0].partition("=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert name == COOKIE and value != token
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= attributes
    assert not any(a.startswith("domain") for a in attributes)  # __Host-: this host only
    assert Settings().api_secure_cookies is True
    assert local_settings(Settings()).api_secure_cookies is False  # course dev serves http://localhost
    assert local_settings(Settings(api_secure_cookies=True)).api_secure_cookies is True  # said explicitly


async def test_docs_are_served_from_the_service_with_no_third_party_script(pg_pool: asyncpg.Pool) -> None:
    app = create_app(cast(CourseClient, None), ConfiguredStaff([]), pg_pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "http:" not in docs.text and "https:" not in docs.text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", docs.text, re.S)
        assert scripts and all('src="/' in attributes and not body.strip() for attributes, body in scripts)
        csp = docs.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert len(assets) == 4
        for asset in assets:
            assert asset.startswith("/static/"), asset
            served = await http.get(asset)
            assert served.status_code == 200 and len(served.content) > 100, asset
        bundle = await http.get("/static/swagger-ui/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        assert (await http.get("/openapi.json")).json()["openapi"].startswith("3.1")
        assert (await http.get("/redoc")).status_code == 404  # FastAPI's CDN pages are off
