"""The clinician console: server-rendered pages over the same services as the JSON API.

Plain HTML forms, no JavaScript. Signing in with a staff token opens a server-side session
(api/sessions.py): the cookie carries the session's random id, never the token, and is HttpOnly,
SameSite=Strict and `Secure` (unless `course dev` runs it over http://localhost). A session ends
after 30 minutes without a request, 10 hours after sign-in, at sign-out (every session of the
member) and when the member's token is revoked; the sign-in page then says which. CSRF: the
SameSite=Strict cookie, and every POST whose Origin (or, without one, Referer) is not the
configured public origin is refused (403). Each form carries a request id made when it is
rendered, sent as the Idempotency-Key, so a double submit records the step once; a form the course
did not answer in time comes back with the same id, so submitting it again is still the same step.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError
from temporalio.service import RPCError

from api.forms import FormField, errors_by_field, form_fields, payload_from_form
from api.gad7_chart import MARKERS, Gad7Score, Source, gad7_chart
from api.models import OpenCourseRequest
from api.outcome_charts import funnel_chart, response_chart, trajectory_chart
from api.problems import Problem
from api.routes import refuse_control_characters
from api.services import Services
from api.sessions import ConsoleSessions, Ended
from application.courses import CourseNotFound, StepRejected, StepTimedOut
from application.reads import PATIENT_REFERENCE, ReadRefused
from application.today import today
from course.access import BreakGlassReason
from course.cohorts import OutcomeReport, nothing_to_report
from course.commands import STEPS, Actor, ClinicianCommand, Role
from course.explain import timeline_in_words
from course.labels import choice_words
from course.offers import offered_steps, prefill
from course.publication import PolicyRefused
from course.rules import STEP_ROLES, role_refusal
from course.view import CourseView, OperationsView
from worker.settings import public_origin

log = structlog.get_logger(__name__)

# `__Host-`: the browser takes it only if Secure, for path /, from this very host (no subdomain
# can plant a session). Browsers refuse that prefix without Secure, hence the plain local name.
COOKIE = "__Host-course_session"
LOCAL_COOKIE = "course_session"
OLD_COOKIE = "course_console"  # held the raw staff token before sessions: opens nothing, deleted
# A form's prefills (next session, route, dose) are a convenience: a course that does not answer
# this fast (no worker serving courses) gets its form unfilled rather than a slow page.
FORM_READ_SECONDS = 3.0
BOARD_REFRESH_SECONDS = 30  # the chair-side board: recent enough for a 10-minute recheck window
REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # what the API takes as an Idempotency-Key
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


# One function holding every page's route reads top to bottom like the console's site map.
def console_router(  # noqa: PLR0915
    services: Services,
    sessions: ConsoleSessions,
    *,
    time_zone: str = "UTC",
    secure_cookies: bool = True,
    origin: str | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    zone = ZoneInfo(time_zone)
    cookie = COOKIE if secure_cookies else LOCAL_COOKIE
    minutes = int(sessions.idle.total_seconds() // 60)
    hours = int(sessions.absolute.total_seconds() // 3600)
    ended_because: dict[str, str] = {
        "idle": f"Your session ended after {minutes} minutes without activity; sign in again.",
        "expired": f"Your session ended {hours} hours after you signed in; sign in again.",
        "signed_out": "You signed out (here or on another device); sign in again to continue.",
        "token_revoked": "Your staff token was revoked or replaced, which ended your session; "
        "sign in with your current token.",
        "token_replaced": "Your staff token was replaced, which ended your session; sign in with your new token.",
    }

    def local(moment: str | datetime | None) -> str:
        if moment is None:
            return "-"
        value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {"local": local, "time_zone": time_zone, "words": choice_words}
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def signed_in(request: Request) -> Actor | Ended | None:
        session = request.cookies.get(cookie)
        return await sessions.resume(session) if session else None

    def from_the_console(request: Request) -> bool:
        """A POST sent by a page of ours: its Origin (or, without one, its Referer's origin) is the
        configured public origin, or without one, the origin this request was sent to."""
        expected = origin or _origin_of(f"{request.url.scheme}://{request.url.netloc}")
        sent = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
        return sent is not None and sent.lower() == expected

    def refused(request: Request) -> HTMLResponse:
        log.warning("console POST refused: not from the console's origin", path=request.url.path)
        return page(request, "refused.html", 403)

    def forget(response: Response, request: Request) -> Response:
        for name in (cookie, OLD_COOKIE):
            if name in request.cookies:
                response.delete_cookie(name, httponly=True, samesite="strict", secure=secure_cookies)
        return response

    def to_login(request: Request, ended: Ended | None = None) -> Response:
        where = "/console/login" + (f"?ended={ended.reason}" if ended else "")
        return forget(RedirectResponse(where, status_code=303), request)

    @router.get("/login")
    async def login_form(request: Request) -> HTMLResponse:
        notice = ended_because.get(request.query_params.get("ended", ""))
        return page(request, "login.html", notice=notice)

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not from_the_console(request):
            return refused(request)
        token = str((await request.form()).get("token", "")).strip()
        actor = await services.staff.member_for(token) if token else None
        if actor is None:
            return page(request, "login.html", 401, error="That token is not valid.")
        session = await sessions.start(actor, token)
        log.info("console sign-in", staff=actor.id, role=actor.role.value)
        response = forget(RedirectResponse("/console", status_code=303), request)
        response.set_cookie(
            cookie,
            session,
            max_age=int(sessions.absolute.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        """Signing out ends every session of the member, on this device and any other."""
        if not from_the_console(request):
            return refused(request)
        who = await signed_in(request)
        if not isinstance(who, Actor):
            return to_login(request, who)
        ended = await sessions.end_all(who.id, "signed_out")
        log.info("console sign-out", staff=who.id, sessions_ended=ended)
        return to_login(request, Ended("signed_out"))

    @router.get("/monitoring")
    async def monitoring_board(request: Request) -> Response:
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        rows = await services.reads("console").monitoring_board(actor, datetime.now(UTC))
        return page(request, "monitoring.html", actor=actor, rows=rows, refresh_seconds=BOARD_REFRESH_SECONDS)

    @router.get("/today")
    async def today_page(request: Request) -> Response:
        """The morning huddle's digest (operations: all of it and the last reconciliation's
        findings; a clinician: their own part)."""
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        if actor.role is Role.CLINIC_ADMIN:
            return page(request, "today.html", actor=actor, today=None)
        return page(request, "today.html", actor=actor, today=await today(services.reads("console"), actor))

    @router.get("/reports/outcomes")
    async def outcome_report(request: Request) -> Response:
        """The clinic's outcome report with its three charts; refused (403) to nurses and clinic admins."""
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        since_value = (request.query_params.get("since") or "").strip()
        try:
            since = datetime.strptime(since_value, "%Y-%m-%d").replace(tzinfo=zone) if since_value else None
        except ValueError:
            return page(request, "outcomes.html", 422, actor=actor, report=None, since_value="",
                        since_error="Give the date as the form's date field writes it (YYYY-MM-DD).")  # fmt: skip
        try:
            report = await services.reports("console").outcomes(actor, datetime.now(UTC), since)
        except ReadRefused as read_refused:
            return page(request, "outcomes.html", 403, actor=actor, report=None, refused=read_refused,
                        since_value=since_value)  # fmt: skip
        breakdowns = [(f"By {name.replace('_', ' ')}", cohorts) for name, cohorts in report.breakdowns.items()]
        return page(
            request,
            "outcomes.html",
            actor=actor,
            report=report,
            since_value=since_value,
            empty=nothing_to_report(report),
            charts=_charts(report) if report.courses else None,
            withheld=f"fewer than {report.thresholds.minimum_cohort}",
            breakdowns=breakdowns,
        )

    @router.get("")
    async def my_courses(request: Request) -> Response:
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        patient = (request.query_params.get("patient") or "").strip()
        if patient:
            if not PATIENT_REFERENCE.fullmatch(patient):
                return page(request, "courses.html", 422, actor=actor, courses=[], patient=patient,
                            search_error="A patient reference is the clinic's id: letters, digits and . _ : -",
                            **_opening({}))  # fmt: skip
            rows = await services.reads("console").find(actor, patient)
            return page(request, "courses.html", actor=actor, courses=rows, patient=patient, **_opening({}))
        rows = await services.my_courses(actor)
        return page(request, "courses.html", actor=actor, courses=rows, patient="", **_opening({}))

    @router.post("/courses")
    async def open_course(request: Request) -> Response:
        if not from_the_console(request):
            return refused(request)
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        form = await request.form()
        submitted = {key: [str(v) for v in form.getlist(key)] for key in form}
        try:
            body = OpenCourseRequest.model_validate(payload_from_form(opening_fields(), submitted, time_zone))
            refuse_control_characters(body)
        except ValidationError as error:
            rows = await services.my_courses(actor)
            return page(
                request,
                "courses.html",
                422,
                actor=actor,
                courses=rows,
                **_opening(errors_by_field(error, OpenCourseRequest)),
            )
        try:
            course, _ = await services.open_course(body, uuid.uuid4(), actor)  # logs the opening
        except PolicyRefused as policy_refused:
            rows = await services.my_courses(actor)
            return page(
                request, "courses.html", 422, actor=actor, courses=rows, **_opening({"policy": policy_refused.message})
            )
        return RedirectResponse(f"/console/courses/{course}?recorded=opening", status_code=303)

    @router.get("/courses/{course_id}")
    async def course_page(request: Request, course_id: str) -> Response:
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        reason = _break_glass_reason(request.query_params.get("break_glass"))
        try:
            view, events = await services.reads("console").timeline(actor, course_id, reason)
        except CourseNotFound:
            return page(request, "missing.html", 404, actor=actor)
        except ReadRefused as read_refused:
            return page(
                request,
                "break_glass.html",
                403,
                actor=actor,
                course_id=course_id,
                refused=read_refused,
                reasons=[r.value for r in BreakGlassReason],
            )
        return page(
            request,
            "course.html",
            actor=actor,
            course=view,
            events=events,
            # Each event's line of words, in the clinic's zone (the care team's screen only).
            timeline=list(zip(events, timeline_in_words(events, zone), strict=True)) if events is not None else None,
            trend=gad7_trend(events) if events is not None else None,
            offered=offered_steps(view, actor.role),
            recorded=request.query_params.get("recorded"),
        )

    @router.get("/courses/{course_id}/steps/{step}")
    async def step_form(request: Request, course_id: str, step: str) -> Response:
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        if step not in STEPS:
            return page(request, "missing.html", 404, actor=actor)
        course = await course_for_form(actor, course_id)
        return _step_page(
            request, actor, course_id, step, {}, status=200, refusal=role_refusal(actor.role, step), course=course
        )

    @router.post("/courses/{course_id}/steps/{step}")
    async def record_step(request: Request, course_id: str, step: str) -> Response:
        if not from_the_console(request):
            return refused(request)
        actor = await signed_in(request)
        if not isinstance(actor, Actor):
            return to_login(request, actor)
        if step not in STEPS:
            return page(request, "missing.html", 404, actor=actor)
        form = await request.form()
        submitted = {key: [str(v) for v in form.getlist(key)] for key in form}
        refusal = role_refusal(actor.role, step)
        if refusal is not None:
            return _step_page(request, actor, course_id, step, submitted, status=403, refusal=refusal)
        model = STEPS[step]
        try:
            command: ClinicianCommand = model.model_validate(  # type: ignore[assignment]
                payload_from_form(form_fields(model), submitted, time_zone)
            )
            refuse_control_characters(command)
        except ValidationError as error:
            errors = errors_by_field(error, model)
            return _step_page(request, actor, course_id, step, submitted, status=422, errors=errors)
        except Problem as problem:
            errors = {e["field"]: e["problem"] for e in problem.extra.get("errors", [])}
            return _step_page(request, actor, course_id, step, submitted, status=422, errors=errors)
        key = next(iter(submitted.get("request_id", [])), "")
        if not REQUEST_ID.match(key):
            # Not a form this console rendered (or a very old one): it gets a fresh id to send.
            message = "This form had no request id, so it was not sent. Check the values and submit it again."
            return _step_page(request, actor, course_id, step, submitted, status=428, refusal=message)
        try:
            await services.record(course_id, command, actor, key)
        except StepTimedOut as unanswered:
            log.warning("console step not answered", step=step, staff=actor.id, request_id=unanswered.request_id)
            message = (
                f"The course did not answer in time; the step may still be recorded (request {unanswered.request_id}). "
                "Submit this form again unchanged: it is recorded once."
            )
            return _step_page(request, actor, course_id, step, submitted, status=504, refusal=message, request_id=key)
        except StepRejected as rejected:
            log.info("console step refused", step=step, staff=actor.id, code=rejected.code)
            course = await course_for_form(actor, course_id)  # the heading names the patient again
            return _step_page(
                request, actor, course_id, step, submitted, status=409, refusal=rejected.message, course=course
            )
        except CourseNotFound:
            return page(request, "missing.html", 404, actor=actor)
        return RedirectResponse(f"/console/courses/{course_id}?recorded={step}", status_code=303)

    async def course_for_form(actor: Actor, course_id: str) -> CourseView | OperationsView | None:
        """The course as this member may read it routinely (recorded as a read), for the form's
        heading and its prefills; None when it needs a reason, is not there, or does not answer
        within FORM_READ_SECONDS (no worker serving courses): the form still opens, unfilled."""
        try:
            return await asyncio.wait_for(services.reads("console").course(actor, course_id), FORM_READ_SECONDS)
        except (ReadRefused, CourseNotFound, RPCError, TimeoutError):
            return None

    def _step_page(
        request: Request,
        actor: Actor,
        course_id: str,
        step: str,
        submitted: dict[str, list[str]],
        *,
        status: int,
        refusal: str | None = None,
        errors: dict[str, str] | None = None,
        request_id: str | None = None,
        course: CourseView | OperationsView | None = None,
    ) -> HTMLResponse:
        starting = prefill(step, course) if course is not None else {}
        fields = [replace(f, default=starting.get(f.name, f.default)) for f in form_fields(STEPS[step])]
        return page(
            request,
            "step.html",
            status,
            actor=actor,
            course_id=course_id,
            course=course,
            step=step,
            fields=fields,
            values=submitted,
            refusal=refusal,
            errors=errors or {},
            # A fresh id per rendered form: a refused or invalid submission wrote nothing, so the
            # corrected one is a new request; only a re-sent identical form repeats its id. A form
            # the course did not answer keeps its id: the step may yet be recorded under it.
            request_id=request_id or str(uuid.uuid4()),
            now=datetime.now(zone).strftime("%Y-%m-%dT%H:%M"),
            roles=", ".join(sorted(r.value for r in STEP_ROLES[step])),
        )

    return router


def _charts(report: OutcomeReport) -> dict[str, Markup]:
    # Our own SVG from matplotlib (every label is a number, a code or our own words): safe to inline.
    return {
        "trajectory": Markup(trajectory_chart(report)),  # noqa: S704
        "response": Markup(response_chart(report)),  # noqa: S704
        "funnel": Markup(funnel_chart(report)),  # noqa: S704
    }


def _break_glass_reason(value: str | None) -> BreakGlassReason | None:
    """A reason from the console's form; anything else is no reason (the form is shown again)."""
    try:
        return BreakGlassReason(value) if value else None
    except ValueError:
        return None


def _origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of a URL as browsers write an Origin; None for anything else."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        return public_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        return None


def opening_fields() -> list[FormField]:
    """The open-a-course form: the course opens on the clinic's current policy (the API can name another),
    and its assessment is the prescriber's own form on the course's page (the API can send it along)."""
    return [
        f
        for f in form_fields(OpenCourseRequest)
        if f.name != "course_id" and not f.name.startswith(("policy", "assessment"))
    ]


def _opening(errors: dict[str, str]) -> dict[str, Any]:
    return {"opening": opening_fields(), "errors": errors, "values": {}}


# The events whose facts carry a GAD-7 score, and what each score was taken at.
_SCORED: dict[str, Source] = {
    "AssessmentRecorded": "assessment",
    "DosingSessionCompleted": "dose",
    "IntegrationSessionRecorded": "integration",
    "MaintenanceSessionRecorded": "maintenance",
}


def gad7_trend(events: list[dict[str, Any]]) -> dict[str, Any]:
    """GAD-7 scores over the course (when each was taken: a session's held_at, else when it was
    recorded) and their chart as inline SVG (api/gad7_chart.py)."""
    scores = [
        Gad7Score(
            at=datetime.fromisoformat(e["data"].get("held_at") or e["occurred_at"]),
            score=e["data"]["gad7"],
            source=_SCORED[e["type"]],
        )
        for e in events
        if e["type"] in _SCORED and isinstance(e["data"].get("gad7"), int)
    ]
    scores.sort(key=lambda s: s.at)
    rows = [{"at": s.at, "score": s.score, "what": MARKERS[s.source][1]} for s in scores]
    # Safe to mark up: every character of the SVG is ours or a number (no free text reaches it).
    return {"scores": rows, "svg": Markup(gad7_chart(scores)) if scores else None}  # noqa: S704
