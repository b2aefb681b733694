"""The HTTP API and the clinician console: one FastAPI app, built from the service's parts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from activities.event_store import PostgresEventStore
from api import docs, problems
from api.headers import SecurityHeaders
from api.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from api.routes import api_router
from api.services import Services
from api.sessions import ConsoleSessions
from api.staff import StaffDirectory
from application.courses import CourseClient
from course.publication import DEFAULT_POLICY_NAME

DESCRIPTION = """Treatment courses for a ketamine-assisted therapy clinic.

Authenticate with a staff bearer token (`course staff add ID --role ROLE`). The acting staff member
of every command is the token's owner. Courses open on a policy a clinic admin published
(`/policies`), never on one the caller sends. Errors are RFC 9457 problem details; a step a clinical rule
refuses is `409` with the rule's `code` and a sentence to act on. Every step needs an
`Idempotency-Key` header (`428` without): a retried step with the same key is applied once, and a
`504` names the request to retry with that key. A request body over the configured limit (64 KiB by
default) is `413`, before the token is looked at. Responses are `Cache-Control: no-store`. The
clinician console is at `/console`.
"""


def create_app(
    courses: CourseClient,
    staff: StaffDirectory,
    pool: asyncpg.Pool,
    *,
    time_zone: str = "UTC",
    secure_cookies: bool = True,
    public_origin: str | None = None,
    idle_minutes: int = 30,
    session_hours: int = 10,
    step_timeout: float = 30.0,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clinic_policy: str = DEFAULT_POLICY_NAME,
    export_dir: Path | None = None,
) -> FastAPI:
    """`secure_cookies=False` only for local development over http; `public_origin` (already
    normalised, worker/settings.py) is what console POSTs must come from, else their own host."""
    services = Services(
        courses=courses,
        staff=staff,
        store=PostgresEventStore(pool),
        pool=pool,
        step_timeout=step_timeout,
        clinic_policy=clinic_policy,
        **({"export_dir": export_dir} if export_dir is not None else {}),
    )
    sessions = ConsoleSessions(
        pool, staff, idle=timedelta(minutes=idle_minutes), absolute=timedelta(hours=session_hours)
    )
    # FastAPI's own /docs and /redoc load their scripts from a CDN: ours are served from here.
    app = FastAPI(title="Treatment courses", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None)
    problems.install(app)
    # Outside every route and its bearer-token dependency: a body too large is refused unread.
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes)
    # Outermost (added last): every response, a 413 included, gets no-store and the rest.
    app.add_middleware(SecurityHeaders)
    app.include_router(api_router(services, public_origin))

    from api.console import console_router  # noqa: PLC0415 - the console is optional to the API

    app.include_router(
        console_router(services, sessions, time_zone=time_zone, secure_cookies=secure_cookies, origin=public_origin)
    )
    docs.install(app)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    return app
