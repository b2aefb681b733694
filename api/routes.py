"""The JSON API: one route per clinician step, plus courses, events and notifications.

Each step has its own route (`POST /courses/{id}/steps/consent`) whose body is that step's pydantic
model, so the OpenAPI document carries every payload's schema exactly as `course record` takes it.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time, and some
# (the authenticated member, each step's body) are local to the factory below.

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ValidationError

from api.fhir_routes import fhir_router
from api.models import CourseOpened, CourseRow, EventRow, NotificationRow, OpenCourseRequest, StaffMember
from api.policy_routes import policy_problem, policy_router
from api.problems import IDEMPOTENCY_KEY, PROBLEMS, Problem, unauthorized
from api.services import Services
from application.courses import StepRejected
from application.queries import course_query
from application.reads import AuditTrail, BoardRow, Dashboard
from course.access import BreakGlassReason
from course.cohorts import OutcomeReport
from course.commands import STEPS, Actor, ClinicianCommand
from course.publication import POLICY_ON_THE_SERVER, PolicyRefused
from course.rules import STEP_ROLES, role_refusal
from course.state import Phase
from course.view import CourseView, OperationsView
from workflows.inputs import workflow_id

LIFECYCLE = ("hold", "release", "withdraw", "reassign")
FHIR_JSON = "application/fhir+json"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_bearer = HTTPBearer(auto_error=False, description="A staff token (`course staff add`).")
IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_KEY,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Required (428 without): a retried request with the same key is applied once.",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="With an assessment: a retried request with the same key is the same step.",
    ),
]
Prefer = Annotated[
    str | None,
    Header(
        max_length=200,
        description="RFC 7240 `wait=SECONDS`: answer 504 after this many seconds instead of the server's 30.",
    ),
]
IdempotencyScope = Annotated[
    Literal["occasion"] | None,
    Header(
        alias="Idempotency-Scope",
        description="`occasion`: the key was derived from the payload (the CLI's, without --request-id); "
        "for steps that recur identically on purpose (hold, release, clinical-review, check-in, "
        "schedule-session, reassign) the course's moment is added to it, so the next hold is a new request "
        "and a retry the same one.",
    ),
]
_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,6})(?:$|[,;\s])")
BreakGlass = Annotated[
    BreakGlassReason | None,
    Header(
        alias="X-Break-Glass-Reason",
        description="A clinician outside the course's routine readers reads it only with a reason "
        "(recorded with the read); operations never read the clinical record.",
    ),
]


def authenticate(services: Services) -> Callable[..., Awaitable[Actor]]:
    async def member(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Actor:
        if credentials is None:
            raise unauthorized()
        actor = await services.staff.member_for(credentials.credentials)
        if actor is None:
            raise unauthorized("That token is not valid.")
        return actor

    return member


def require_role(actor: Actor, step: str) -> None:
    """Refuse before Temporal is asked: the workflow's validator would say the same, later."""
    refusal = role_refusal(actor.role, step)
    if refusal is not None:
        raise Problem(HTTPStatus.FORBIDDEN, refusal, code="role_not_permitted")


def preferred_wait(prefer: str | None) -> float | None:
    """`Prefer: wait=N` (RFC 7240): the caller waits N seconds at most (1 s at least); else None."""
    found = _WAIT.search(prefer or "")
    return max(1.0, float(found.group(1))) if found else None


def refuse_control_characters(value: BaseModel) -> None:
    """PostgreSQL's jsonb cannot store U+0000, so an event holding one could never be appended and
    the step would wait forever; other control characters in clinical text are mistakes too."""
    bad = [path for path, text in _strings(value.model_dump(mode="json")) if _CONTROL.search(text)]
    if bad:
        raise Problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "The request is not valid.",
            errors=[{"field": path, "problem": "control characters are not allowed"} for path in bad],
        )


def as_sent_by_a_person(model: type[BaseModel]) -> BeforeValidator:
    """Validate a body with `extra="forbid"`: the models tolerate unknown fields between worker
    versions (course/messages.py), a person's request does not (a typo, a forged `actor`: 422)."""

    def strictly(value: object) -> object:
        return value if value is None or isinstance(value, model) else model.model_validate(value, extra="forbid")

    return BeforeValidator(strictly)


def _refuse_a_policy_of_its_own(value: object) -> object:
    """Runs before the body's own validation, so the caller reads why instead of "extra field"."""
    if isinstance(value, dict) and "policy" in value:
        raise Problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            POLICY_ON_THE_SERVER,
            code="policy_not_accepted",
            errors=[{"field": "policy", "problem": "policies are published on the server, not sent with a course"}],
        )
    return value


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path or "body", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")


async def _open(services: Services, body: OpenCourseRequest, actor: Actor, key: str | None) -> CourseOpened:
    if body.assessment is not None:
        require_role(actor, body.assessment.step)
    course_id = body.course_id or uuid.uuid4()
    try:
        course, first = await services.open_course(body, course_id, actor, key)
    except PolicyRefused as refused:
        raise policy_problem(refused) from None
    except StepRejected as rejected:  # the course is open; only its assessment was refused
        raise Problem(
            HTTPStatus.CONFLICT,
            f"{rejected.message} The course {course_id} is open and awaits its assessment.",
            code=rejected.code,
            course_id=str(course_id),
        ) from None
    return CourseOpened(course_id=course, workflow_id=workflow_id(course), first_step=first)


def api_router(services: Services, public_origin: str | None = None) -> APIRouter:
    router = APIRouter(responses={401: PROBLEMS[401], 413: PROBLEMS[413], 422: PROBLEMS[422]})
    Member = Annotated[Actor, Depends(authenticate(services))]
    reads = services.reads("api")

    @router.get("/me", tags=["staff"])
    async def me(actor: Member) -> StaffMember:
        return StaffMember(id=actor.id, role=actor.role)

    @router.post("/courses", status_code=201, tags=["courses"], responses={403: PROBLEMS[403], 409: PROBLEMS[409]})
    async def open_course(
        body: Annotated[
            OpenCourseRequest,
            Body(),
            as_sent_by_a_person(OpenCourseRequest),
            BeforeValidator(_refuse_a_policy_of_its_own),  # the last runs first
        ],
        actor: Member,
        response: Response,
        idempotency_key: OptionalIdempotencyKey = None,
    ) -> CourseOpened:
        """Open a course (idempotent on `course_id`: the same id returns the existing course) on a published
        policy: `policy_name` and `policy_version`, or the clinic's current one. A `policy` in the body is 422.
        With `assessment`, the course's first step is recorded with it in one round trip (the opener must
        be a prescriber; a refused assessment is 409, and the course stays open awaiting it)."""
        refuse_control_characters(body)
        opened = await _open(services, body, actor, idempotency_key)
        response.headers["Location"] = f"/courses/{opened.course_id}"
        return opened

    @router.get("/courses", tags=["courses"])
    async def find_courses(
        actor: Member,
        *,
        phase: Phase | None = None,
        awaiting: Annotated[str | None, Query(max_length=64)] = None,
        clinician: Annotated[str | None, Query(max_length=64)] = None,
        therapist: Annotated[str | None, Query(max_length=64)] = None,
        overdue: bool = False,
        on_hold: bool = False,
        needs_review: bool = False,
        include_closed: Annotated[bool, Query(alias="all")] = False,
        patient: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[CourseRow]:
        """The filters of `course list`, narrowed to the courses the member reads routinely (care team;
        nurses: preparation and dosing; operations: all). Each course listed is recorded as read.
        `patient`: the courses of that patient reference (open and closed; `course find REF`)."""
        if patient is not None:
            return [CourseRow.model_validate(row) for row in await reads.find(actor, patient, limit)]
        query = course_query(
            phase=phase.value if phase else None,
            awaiting=awaiting,
            clinician=clinician,
            therapist=therapist,
            overdue=overdue,
            on_hold=on_hold,
            needs_review=needs_review,
            include_closed=include_closed,
        )
        rows = await reads.listing(actor, query, limit)
        return [CourseRow.model_validate(row) for row in rows]

    @router.get("/courses/{course_id}", tags=["courses"], responses={403: PROBLEMS[403], 404: PROBLEMS[404]})
    async def course_view(course_id: str, actor: Member, reason: BreakGlass = None) -> CourseView | OperationsView:
        """The course's view for the clinicians who may read it; operations get the operations view
        (`"view": "operations"`: no GAD-7, route or closing reasons). Recorded in the access log."""
        return await reads.course(actor, course_id, reason)

    @router.get("/courses/{course_id}/events", tags=["courses"], responses={403: PROBLEMS[403], 404: PROBLEMS[404]})
    async def course_events(course_id: str, actor: Member, reason: BreakGlass = None) -> list[EventRow]:
        """The clinical record: never to operations. Recorded in the access log."""
        return [EventRow.model_validate(row) for row in await reads.events(actor, course_id, reason)]

    @router.get(
        "/courses/{course_id}/fhir",
        tags=["courses"],
        response_class=Response,
        responses={
            200: {"content": {FHIR_JSON: {}}, "description": "A FHIR R4B Bundle of type collection"},
            403: PROBLEMS[403],
            404: PROBLEMS[404],
        },
    )
    async def course_fhir(course_id: str, actor: Member, request: Request, reason: BreakGlass = None) -> Response:
        """The course as FHIR R4B resources in a `collection` Bundle (README: FHIR export), under the
        same read rules and access log as the course's other reads. Operations get it without the
        clinical free text and the support person."""
        base = f"{str(request.base_url).rstrip('/')}/fhir"
        bundle = await reads.fhir(actor, course_id, reason, base_url=base)
        return Response(bundle.model_dump_json(), media_type=FHIR_JSON)

    @router.get("/courses/{course_id}/audit", tags=["courses"], responses={403: PROBLEMS[403], 404: PROBLEMS[404]})
    async def course_audit(course_id: str, actor: Member) -> AuditTrail:
        """Who read the course (this read included) and who changed it: for operations and the
        course's prescriber and therapist."""
        return await reads.audit(actor, course_id)

    @router.get(
        "/courses/{course_id}/notifications",
        tags=["notifications"],
        responses={403: PROBLEMS[403], 404: PROBLEMS[404]},
    )
    async def course_notifications(course_id: str, actor: Member, reason: BreakGlass = None) -> list[NotificationRow]:
        rows = await reads.notifications(actor, course_id, reason)
        return [NotificationRow.model_validate(row) for row in rows]

    @router.get("/notifications", tags=["notifications"], responses={403: PROBLEMS[403]})
    async def recent_notifications(
        actor: Member, *, attention: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 200
    ) -> list[NotificationRow]:
        """Operations only: each course listed is recorded as read."""
        rows = await reads.recent_notifications(actor, attention=attention, limit=limit)
        return [NotificationRow.model_validate(row) for row in rows]

    @router.get("/monitoring", tags=["courses"])
    async def monitoring_board(actor: Member) -> list[BoardRow]:
        """The chair-side board (`course monitoring`): every patient in monitoring after a dose that
        the member reads routinely, longest in the chair first; operations see no readings."""
        return await reads.monitoring_board(actor, datetime.now(UTC))

    @router.get("/dashboard", tags=["courses"], responses={403: PROBLEMS[403]})
    async def dashboard(actor: Member) -> Dashboard:
        """`course dashboard`: open courses per phase, on hold, overdue and needing review, of the
        courses the member reads routinely (operations: all). The courses named are recorded as read."""
        return await reads.dashboard(actor)

    @router.get("/reports/outcomes", tags=["reports"], responses={403: PROBLEMS[403]})
    async def outcome_report(
        actor: Member,
        since: Annotated[
            AwareDatetime | None, Query(description="only courses opened at or after this time (ISO 8601, with zone)")
        ] = None,
    ) -> OutcomeReport:
        """`course report outcomes`: the clinic's GAD-7 outcomes per cohort (route, integration modality,
        integration sessions per dose, month of opening), with the funnel and the trajectory. Prescribers,
        therapists and operations; cohorts under the clinic's minimum are suppressed; the read is recorded."""
        return await services.reports("api").outcomes(actor, datetime.now(UTC), since)

    router.include_router(policy_router(services, Member))
    router.include_router(fhir_router(lambda: services.exporting, Member, public_origin))

    for step, model in STEPS.items():
        paths = [f"/courses/{{course_id}}/steps/{step}"]
        if step in LIFECYCLE:
            paths.append(f"/courses/{{course_id}}/{step}")
        endpoint = _step_endpoint(services, step, model, Member)
        for path in paths:
            router.add_api_route(
                path,
                endpoint,
                methods=["POST"],
                response_model=CourseView | OperationsView,
                tags=["lifecycle" if step in LIFECYCLE else "steps"],
                summary=f"Record {step}",
                operation_id=f"record_{step.replace('-', '_')}" + ("" if path.endswith(f"steps/{step}") else "_short"),
                responses={
                    403: PROBLEMS[403],
                    404: PROBLEMS[404],
                    409: PROBLEMS[409],
                    428: PROBLEMS[428],
                    504: PROBLEMS[504],
                },
            )
    return router


def _step_endpoint(services: Services, step: str, model: type[BaseModel], member: Any) -> Callable[..., Any]:
    try:
        model()
        optional = True  # an empty body means something (release): it may be left out
    except ValidationError:
        optional = False

    async def record_step(  # noqa: PLR0917 - FastAPI's parameters: path, auth, headers, body
        course_id: str,
        actor: Actor,
        idempotency_key: IdempotencyKey,
        payload: Any = None,
        prefer: Prefer = None,
        scope: IdempotencyScope = None,
    ) -> CourseView | OperationsView:
        require_role(actor, step)
        command = cast(ClinicianCommand, payload if payload is not None else model())
        refuse_control_characters(command)
        await services.record(
            course_id, command, actor, idempotency_key, wait=preferred_wait(prefer), per_occasion=scope == "occasion"
        )
        # The step answers with a small outcome (workflows/treatment_course.py: record); the API's
        # answer is the whole view, at least as new as the step, read by the `status` query.
        view = await services.courses.status(course_id)
        return services.reads("api").answer(actor, view)

    # FastAPI reads the body's schema from the annotation: each step's own model (bare payload).
    record_step.__annotations__["actor"] = member
    strict = as_sent_by_a_person(model)
    record_step.__annotations__["payload"] = (
        Annotated[model | None, Body(), strict] if optional else Annotated[model, Body(), strict]
    )
    record_step.__doc__ = (model.__doc__ or "") + (
        f"\n\nRoles: {_roles(step)}. A rule that refuses it: 409. The answer is the course's view for those "
        "who read it routinely, else its operations view."
    )
    return record_step


def _roles(step: str) -> str:
    return ", ".join(sorted(role.value for role in STEP_ROLES[step]))
