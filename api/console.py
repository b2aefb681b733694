"""The clinician console: server-rendered pages over the same services as the JSON API.

Plain HTML forms, no JavaScript needed. Signing in stores the staff token in an HttpOnly,
SameSite=Strict cookie: a page on another site can neither read it nor make the browser send it
with a cross-site POST, which is the console's CSRF defence (POSTs with a foreign Origin are also
refused). Each form carries a request id made when it is rendered, sent as the Idempotency-Key, so
a double submit records the step once; a form the course did not answer in time comes back with
the same id, so submitting it again is still the same step.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.forms import FormField, errors_by_field, form_fields, payload_from_form
from api.models import OpenCourseRequest
from api.problems import Problem
from api.routes import refuse_control_characters
from api.services import Services
from cli.client import CourseNotFound, StepRejected, StepTimedOut
from course.access import BreakGlassReason
from course.commands import STEPS, Actor, ClinicianCommand
from course.publication import PolicyRefused
from course.rules import STEP_ROLES, role_refusal
from trust.reads import ReadRefused

log = structlog.get_logger(__name__)

COOKIE = "course_console"
SESSION_SECONDS = 10 * 3600  # one clinic day, then sign in again
REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # what the API takes as an Idempotency-Key
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


# One function holding every page's route reads top to bottom like the console's site map.
def console_router(  # noqa: PLR0915
    services: Services, *, time_zone: str = "UTC", secure_cookies: bool = False
) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    zone = ZoneInfo(time_zone)

    def local(moment: str | datetime | None) -> str:
        if moment is None:
            return "-"
        value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {"local": local, "time_zone": time_zone}
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def signed_in(request: Request) -> Actor | None:
        token = request.cookies.get(COOKIE)
        return await services.staff.member_for(token) if token else None

    def foreign(request: Request) -> bool:
        origin = request.headers.get("origin")
        return origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}"

    def to_login() -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    @router.get("/login")
    async def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        token = str((await request.form()).get("token", "")).strip()
        actor = await services.staff.member_for(token) if token and not foreign(request) else None
        if actor is None:
            return page(request, "login.html", 401, error="That token is not valid.")
        log.info("console sign-in", staff=actor.id, role=actor.role.value)
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(
            COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict", secure=secure_cookies
        )
        return response

    @router.post("/logout")
    async def logout() -> Response:
        response = to_login()
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=secure_cookies)
        return response

    @router.get("")
    async def my_courses(request: Request) -> Response:
        actor = await signed_in(request)
        if actor is None:
            return to_login()
        rows = await services.my_courses(actor)
        return page(request, "courses.html", actor=actor, courses=rows, **_opening({}))

    @router.post("/courses")
    async def open_course(request: Request) -> Response:
        actor = await signed_in(request)
        if actor is None or foreign(request):
            return to_login()
        form = await request.form()
        submitted = {key: [str(v) for v in form.getlist(key)] for key in form}
        try:
            body = OpenCourseRequest.model_validate(payload_from_form(opening_fields(), submitted, time_zone))
            refuse_control_characters(body)
        except ValidationError as error:
            rows = await services.my_courses(actor)
            return page(request, "courses.html", 422, actor=actor, courses=rows, **_opening(errors_by_field(error)))
        try:
            course = await services.open_course(body, uuid.uuid4(), actor)  # logs the opening
        except PolicyRefused as refused:
            rows = await services.my_courses(actor)
            return page(
                request, "courses.html", 422, actor=actor, courses=rows, **_opening({"policy": refused.message})
            )
        return RedirectResponse(f"/console/courses/{course}?recorded=opening", status_code=303)

    @router.get("/courses/{course_id}")
    async def course_page(request: Request, course_id: str) -> Response:
        actor = await signed_in(request)
        if actor is None:
            return to_login()
        reason = _break_glass_reason(request.query_params.get("break_glass"))
        try:
            view, events = await services.reads("console").timeline(actor, course_id, reason)
        except CourseNotFound:
            return page(request, "missing.html", 404, actor=actor)
        except ReadRefused as refused:
            return page(
                request,
                "break_glass.html",
                403,
                actor=actor,
                course_id=course_id,
                refused=refused,
                reasons=[r.value for r in BreakGlassReason],
            )
        mine = [step for step in STEPS if actor.role in STEP_ROLES[step]]
        return page(
            request,
            "course.html",
            actor=actor,
            course=view,
            events=events,
            trend=gad7_trend(events) if events is not None else None,
            steps=mine,
            recorded=request.query_params.get("recorded"),
        )

    @router.get("/courses/{course_id}/steps/{step}")
    async def step_form(request: Request, course_id: str, step: str) -> Response:
        actor = await signed_in(request)
        if actor is None:
            return to_login()
        if step not in STEPS:
            return page(request, "missing.html", 404, actor=actor)
        return _step_page(request, actor, course_id, step, {}, status=200, refusal=role_refusal(actor.role, step))

    @router.post("/courses/{course_id}/steps/{step}")
    async def record_step(request: Request, course_id: str, step: str) -> Response:
        actor = await signed_in(request)
        if actor is None or foreign(request):
            return to_login()
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
            return _step_page(request, actor, course_id, step, submitted, status=422, errors=errors_by_field(error))
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
            return _step_page(request, actor, course_id, step, submitted, status=409, refusal=rejected.message)
        except CourseNotFound:
            return page(request, "missing.html", 404, actor=actor)
        return RedirectResponse(f"/console/courses/{course_id}?recorded={step}", status_code=303)

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
    ) -> HTMLResponse:
        return page(
            request,
            "step.html",
            status,
            actor=actor,
            course_id=course_id,
            step=step,
            fields=form_fields(STEPS[step]),
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


def _break_glass_reason(value: str | None) -> BreakGlassReason | None:
    """A reason from the console's form; anything else is no reason (the form is shown again)."""
    try:
        return BreakGlassReason(value) if value else None
    except ValueError:
        return None


def opening_fields() -> list[FormField]:
    """The open-a-course form: the course opens on the clinic's current policy (the API can name another)."""
    return [f for f in form_fields(OpenCourseRequest) if f.name != "course_id" and not f.name.startswith("policy")]


def _opening(errors: dict[str, str]) -> dict[str, Any]:
    return {"opening": opening_fields(), "errors": errors, "values": {}}


def gad7_trend(events: list[dict[str, Any]]) -> dict[str, Any]:
    """GAD-7 scores over the course, with the points of a small inline SVG line (0-21, 21 at the top)."""
    scores = [
        {"at": e["occurred_at"], "score": e["data"]["gad7"], "what": e["type"]}
        for e in events
        if isinstance(e["data"].get("gad7"), int)
    ]
    width, height, pad = 320, 120, 10
    step = (width - 2 * pad) / max(len(scores) - 1, 1)
    points = [
        (round(pad + i * step, 1), round(pad + (21 - s["score"]) * (height - 2 * pad) / 21, 1))
        for i, s in enumerate(scores)
    ]
    return {"scores": scores, "points": points, "width": width, "height": height}
