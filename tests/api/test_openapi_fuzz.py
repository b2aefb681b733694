"""Schemathesis against the generated OpenAPI document: whatever a client sends, never a 5xx.

The app runs under uvicorn in this event loop (its Temporal client lives here); schemathesis and
hypothesis run in a worker thread and call it over HTTP. Examples are bounded so the whole run
takes seconds: valid payloads (against a real course, so rules and Temporal are exercised) and
invalid ones (anything the schema forbids) for every operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from api.server import serving
from course.commands import Role
from tests.api.conftest import Clinic

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))  # more for a deeper local run


def _examples(strategy: Any, base_url: str, label: str, failures: list[str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} for {case.as_curl_command()}")

    # Negative mode on an operation with nothing the schema forbids (GET /me) has nothing to send.
    with contextlib.suppress(Unsatisfiable):
        check()


def _fuzz(document: dict[str, Any], base_url: str, token: str, course: str) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = {"course_id": course} if "{course_id}" in operation.path and mode is GenerationMode.POSITIVE else {}
            strategy = operation.as_strategy(generation_mode=mode, headers=auth, path_parameters=fixed or None)

            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            _examples(strategy, base_url, label, failures)
    return failures


async def test_no_request_the_document_allows_or_forbids_gets_a_server_error(clinic: Clinic) -> None:
    course = await clinic.open()
    document = clinic.app.openapi()
    async with serving(clinic.app, "127.0.0.1", 0) as base_url:
        failures = await asyncio.to_thread(_fuzz, document, base_url, clinic.tokens[Role.PRESCRIBER], course)
    assert not failures, "\n".join(failures)
