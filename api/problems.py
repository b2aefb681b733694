"""Errors as RFC 9457 problem details (`application/problem+json`).

Bodies carry codes, field paths and the rule's own sentence: never the submitted values, which are
clinical data (pydantic's default 422 echoes them; ours does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.courses import CourseNotFound, NoWorkerServing, StepRejected, StepTimedOut
from application.queries import BadFilter
from application.reads import ReadRefused
from course.wording import problem_in_words

PROBLEM_JSON = "application/problem+json"
RULE_TYPE = "urn:treatment-courses:rule:"


class Problem(Exception):
    def __init__(self, status: HTTPStatus, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.extra = extra


class ProblemBody(BaseModel):
    """The shape of every error this API returns (documented in the OpenAPI document)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[dict[str, str]] | None = None
    request_id: str | None = None


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{RULE_TYPE}{problem.code}" if problem.code else "about:blank",
        "title": problem.status.phrase,
        "status": problem.status.value,
        "detail": problem.detail,
    }
    if problem.code:
        body["code"] = problem.code
    body |= problem.extra
    return JSONResponse(body, status_code=problem.status.value, media_type=PROBLEM_JSON, headers=headers)


def field_errors(
    error: ValidationError | RequestValidationError, model: type[BaseModel] | None = None
) -> list[dict[str, str]]:
    """Where and why, never what: the input value is left out. `field` and `type` are the stable
    path and code a program reads; `words` is the same problem as a clinician reads it."""
    return [
        {
            "field": ".".join(str(part) for part in e["loc"] if part != "body") or "body",
            "type": str(e["type"]),
            "problem": str(e["msg"]),
            "words": problem_in_words(e, model, echo=False),
        }
        for e in error.errors()
    ]


def _step_model(request: Request) -> type[BaseModel] | None:
    """The step payload a request was for (its path ends in the step's name), for field titles."""
    from course.commands import STEPS  # noqa: PLC0415 - the API's step table, only for wording

    model: type[BaseModel] | None = STEPS.get(request.url.path.rstrip("/").rsplit("/", 1)[-1])
    return model


IDEMPOTENCY_KEY = "Idempotency-Key"


def key_required() -> Problem:
    """RFC 6585's 428: a step without a key could be recorded twice by a retry, so none is taken."""
    return Problem(
        HTTPStatus.PRECONDITION_REQUIRED,
        "Send an Idempotency-Key header with every step (1-200 printable ASCII characters, e.g. a UUID made when "
        "the form or screen is shown); send the same key again when retrying that step: it is applied once.",
        code="idempotency_key_required",
    )


def unauthorized(detail: str = "A staff bearer token is required.") -> Problem:
    return Problem(HTTPStatus.UNAUTHORIZED, detail)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, problem: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="treatment-courses"'} if problem.status == 401 else None
        return problem_response(problem, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        if any(tuple(e["loc"]) == ("header", IDEMPOTENCY_KEY) and e["type"] == "missing" for e in error.errors()):
            return problem_response(key_required())
        errors = field_errors(error, _step_model(request))
        return problem_response(Problem(HTTPStatus.UNPROCESSABLE_ENTITY, "The request is not valid.", errors=errors))

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, error: ValidationError) -> JSONResponse:
        return problem_response(
            Problem(HTTPStatus.UNPROCESSABLE_ENTITY, "The request is not valid.", errors=field_errors(error))
        )

    @app.exception_handler(StepRejected)
    async def _rejected(_: Request, rejected: StepRejected) -> JSONResponse:
        return problem_response(Problem(HTTPStatus.CONFLICT, rejected.message, code=rejected.code))

    @app.exception_handler(StepTimedOut)
    async def _timed_out(_: Request, unanswered: StepTimedOut) -> JSONResponse:
        request = f"request {unanswered.request_id}"
        if isinstance(unanswered, NoWorkerServing):
            detail = (
                f"No worker is serving courses, so nothing took the step ({request}); operations must start one. "
                "Retry later with the same Idempotency-Key: it is applied once."
            )
            code = "no_worker"
        else:
            detail = (
                f"The course did not answer within {unanswered.seconds:g} s; the step may still be recorded "
                f"({request}). Retry with the same Idempotency-Key: it is applied once."
            )
            code = "not_answered"
        problem = Problem(HTTPStatus.GATEWAY_TIMEOUT, detail, code=code, request_id=unanswered.request_id)
        return problem_response(problem, headers={"Retry-After": "5"})

    @app.exception_handler(ReadRefused)
    async def _read_refused(_: Request, refused: ReadRefused) -> JSONResponse:
        return problem_response(Problem(HTTPStatus.FORBIDDEN, refused.sentence, code=refused.code))

    @app.exception_handler(CourseNotFound)
    async def _missing(_: Request, __: CourseNotFound) -> JSONResponse:
        # Not echoed: the caller knows what it asked for, and a mistyped path could hold anything.
        return problem_response(Problem(HTTPStatus.NOT_FOUND, "No course with this id."))

    @app.exception_handler(BadFilter)
    async def _bad_filter(_: Request, error: BadFilter) -> JSONResponse:
        return problem_response(Problem(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        status = HTTPStatus(error.status_code)
        detail = error.detail if isinstance(error.detail, str) else status.description
        return problem_response(Problem(status, detail), headers=error.headers)


PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}
    for status in (401, 403, 404, 409, 413, 422, 428, 504)
}
