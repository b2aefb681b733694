"""The clinic's API as the `course` CLI uses it: staff commands act as the person whose token they carry.

The API authenticates the token, signs that person's steps (trust/signing.py) and records their
reads (application/reads.py), exactly as for the console: the CLI holds no signing key and says nothing
about who is acting. Problem details come back as the CLI's exceptions, hence its exit codes:
401 not signed in, 403 a role that may not record the step (rejected) or a read refused, 404 no
such course, 409 a rule's refusal, 413/422/428 invalid input, 504 not answered in time.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from pydantic import BaseModel

from application.courses import CourseNotFound, StepRejected, StepTimedOut
from application.reads import AuditTrail, BoardRow, Dashboard, ReadRefused
from cli.tokens import NotSignedIn
from course.access import BreakGlassReason
from course.cohorts import OutcomeReport
from course.commands import Actor, ClinicianCommand
from course.view import CourseView, OperationsView

CONNECT_SECONDS = 5.0
# Past the course's own bound: the API answers 504 after `Prefer: wait`, this is for a lost API.
MARGIN_SECONDS = 15.0


class RequestInvalid(Exception):
    """The API found the request invalid (field paths and reasons, never the values): exit 2."""


class ApiUnavailable(Exception):
    """The API could not be reached or failed: exit 1."""


class Unanswered(StepTimedOut):
    """A step the course did not answer in time: the message says how to send it again safely."""

    def __init__(self, message: str, request_id: str | None, seconds: float) -> None:
        super().__init__(request_id, seconds)
        self.args = (message,)


def _view(body: dict[str, Any]) -> CourseView | OperationsView:
    return OperationsView.model_validate(body) if body.get("view") == "operations" else CourseView.model_validate(body)


class StaffApi:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self.base_url = base_url

    @classmethod
    @asynccontextmanager
    async def session(cls, base_url: str, token: str) -> AsyncIterator[StaffApi]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        timeout = httpx.Timeout(60.0, connect=CONNECT_SECONDS)
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as http:
            yield cls(http, base_url)

    async def me(self) -> Actor:
        return Actor.model_validate(await self._call("GET", "/me"))

    async def open(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("POST", "/courses", json=body)
        return answer

    async def record(
        self, course: UUID, command: ClinicianCommand, key: str, *, derived: bool, wait: float
    ) -> CourseView | OperationsView:
        """`key` is the Idempotency-Key: the CLI's --request-id, or one derived from the payload
        (then the API scopes it to the course's moment for steps that recur on purpose)."""
        headers = {"Idempotency-Key": key, "Prefer": f"wait={max(1, math.ceil(wait))}"}
        if derived:
            headers["Idempotency-Scope"] = "occasion"
        body = command.model_dump(mode="json", exclude={"step"})
        again = "run the same command again" if derived else f"retry with request id {key}"
        try:
            answer = await self._call(
                "POST",
                f"/courses/{course}/steps/{command.step}",
                json=body,
                headers=headers,
                timeout=httpx.Timeout(wait + MARGIN_SECONDS, connect=CONNECT_SECONDS),
                course=course,
                again=again,
                wait=wait,
            )
        except httpx.TimeoutException:
            raise Unanswered(
                f"The API did not answer within {wait + MARGIN_SECONDS:g} s; the step may still be recorded: "
                f"{again} (it is applied once).",
                key,
                wait,
            ) from None
        return _view(answer)

    async def status(self, course: UUID, reason: BreakGlassReason | None) -> CourseView | OperationsView:
        return _view(await self._call("GET", f"/courses/{course}", headers=_glass(reason), course=course))

    async def events(self, course: UUID, reason: BreakGlassReason | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._call(
            "GET", f"/courses/{course}/events", headers=_glass(reason), course=course
        )
        return rows

    async def listing(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._call("GET", "/courses", params=params)
        return rows

    async def notifications(
        self, course: UUID | None, reason: BreakGlassReason | None, *, attention: bool, limit: int
    ) -> list[dict[str, Any]]:
        """One course's notifications, or (operations) the latest of every course."""
        if course is None:
            params = {"limit": limit} | ({"attention": "true"} if attention else {})
            rows: list[dict[str, Any]] = await self._call("GET", "/notifications", params=params)
            return rows
        rows = await self._call("GET", f"/courses/{course}/notifications", headers=_glass(reason), course=course)
        return [r for r in rows if r["needs_attention"]] if attention else rows

    async def find(self, patient_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._call("GET", "/courses", params={"patient": patient_id})
        return rows

    async def monitoring(self) -> list[BoardRow]:
        rows = await self._call("GET", "/monitoring")
        return [BoardRow.model_validate(row) for row in rows]

    async def dashboard(self) -> Dashboard:
        return Dashboard.model_validate(await self._call("GET", "/dashboard"))

    async def outcome_report(self, since: datetime | None) -> OutcomeReport:
        params = {"since": since.isoformat()} if since else {}
        return OutcomeReport.model_validate(await self._call("GET", "/reports/outcomes", params=params))

    async def audit(self, course: UUID) -> AuditTrail:
        return AuditTrail.model_validate(await self._call("GET", f"/courses/{course}/audit", course=course))

    async def fhir(self, course: UUID, reason: BreakGlassReason | None) -> dict[str, Any]:
        """The course as a FHIR Bundle (JSON): clinical, or without free text, as the API decides."""
        headers = {**_glass(reason), "Accept": "application/fhir+json"}
        bundle: dict[str, Any] = await self._call("GET", f"/courses/{course}/fhir", headers=headers, course=course)
        return bundle

    async def start_bulk_export(self, since: datetime | None) -> str:
        """Kick off a bulk FHIR export (operations); the status URL to poll."""
        params = {"_since": since.isoformat()} if since is not None else {}
        response = await self._send("POST", "/fhir/$export", params=params, headers={"Prefer": "respond-async"})
        if response.status_code != HTTPStatus.ACCEPTED:
            raise _problem(response, None, "", 0.0)
        return response.headers["Content-Location"]

    async def bulk_export_status(self, status_url: str) -> tuple[dict[str, Any] | None, str]:
        """The manifest once complete (else None), and the progress the API reports."""
        response = await self._send("GET", status_url)
        if response.status_code == HTTPStatus.ACCEPTED:
            return None, response.headers.get("X-Progress", "running")
        if not response.is_success:
            raise _problem(response, None, "", 0.0)
        manifest: dict[str, Any] = response.json()
        return manifest, "complete"

    async def download(self, url: str, into: Path) -> None:
        """Stream one file of an export to `into` (written beside it, then renamed: never half a file)."""
        partial = into.with_name(f".{into.name}.part")
        try:
            async with self._http.stream("GET", url) as response:
                if not response.is_success:
                    await response.aread()
                    raise _problem(response, None, "", 0.0)
                with partial.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
        except httpx.TransportError as error:
            raise ApiUnavailable(f"lost the clinic's API at {self.base_url} ({type(error).__name__})") from None
        partial.replace(into)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        course: UUID | None = None,
        again: str = "",
        wait: float = 0.0,
        **kwargs: Any,
    ) -> Any:
        response = await self._send(method, path, **kwargs)
        if response.is_success:
            return response.json()
        raise _problem(response, course, again, wait)

    async def publish_policy(self, name: str | None, policy: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The published version, and whether it is new (201) or the current one's very body (200)."""
        response = await self._send("POST", "/policies", json={"name": name, "policy": policy})
        if not response.is_success:
            raise _problem(response, None, "", 0.0)
        published: dict[str, Any] = response.json()
        return published, response.status_code == HTTPStatus.CREATED

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            if method == "POST":
                raise
            raise ApiUnavailable(f"the clinic's API at {self.base_url} did not answer in time") from None
        except httpx.TransportError as error:
            raise ApiUnavailable(
                f"cannot reach the clinic's API at {self.base_url} ({type(error).__name__}); nothing was sent. "
                "Start it (`course dev`, or `course api`) or set API_URL. If care cannot wait, an operator can "
                "record the step with their break-glass key (`course record ... --break-glass REASON`)."
            ) from None


def _glass(reason: BreakGlassReason | None) -> dict[str, str]:
    return {"X-Break-Glass-Reason": reason.value} if reason else {}


class _Problem(BaseModel):
    title: str = ""
    detail: str = ""
    code: str | None = None
    errors: list[dict[str, str]] | None = None


def _problem(response: httpx.Response, course: UUID | None, again: str, wait: float) -> Exception:
    try:
        problem = _Problem.model_validate(response.json())
    except ValueError:
        problem = _Problem(title=response.reason_phrase)
    detail = problem.detail or problem.title
    status = response.status_code
    if status == 401:
        return NotSignedIn(f"the API does not accept this token ({detail}); sign in again with `course login`")
    if status == 403 and problem.code == "role_not_permitted":
        return StepRejected(problem.code, detail)
    if status == 403:
        return ReadRefused(problem.code or "forbidden", detail)
    if status == 404 and course is not None:
        return CourseNotFound(str(course))
    if status == 409:
        return StepRejected(problem.code or "rejected", detail)
    if status in (413, 422, 428):
        fields = "; ".join(f"{e.get('field')}: {e.get('problem')}" for e in problem.errors or [])
        code = f"({problem.code})" if problem.code else ""  # a stable code scripts can match on
        return RequestInvalid(" ".join(part for part in (detail, code, fields) if part))
    if status == 504:
        if problem.code == "no_worker":
            message = (
                f"no worker is serving courses: nothing took the step within {wait:g} s. "
                f"Operations must start one (`course worker`); then {again} (it is applied once)."
            )
        else:
            message = (
                f"The course did not answer within {wait:g} s; the step may still be recorded: "
                f"{again} (it is applied once)."
            )
        return Unanswered(message, None, wait)
    return ApiUnavailable(f"the API answered {status} {problem.title or response.reason_phrase}: {detail}")
