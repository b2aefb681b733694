"""`course export COURSE_ID --fhir`: the Bundle through the API as the token's owner, with the CLI's exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests import story
from tests.integration.staff_cli import Cli

pytestmark = pytest.mark.integration


async def test_a_course_exported_from_the_command_line_is_a_valid_bundle_clinical_only_for_clinicians(
    cli: Cli,
) -> None:
    opened = await cli(
        "open", "--patient", "pt-fhir-1", "--clinician", "dr-ames", "--self-pay", "--condition", "gad", "--json",
        role="operations",
    )  # fmt: skip
    assert opened.code == 0, opened.err
    course = opened.json()["course_id"]
    assessed = await cli(
        "record", course, "assessment", "--data", cli.payload("a", story.assessment()), member="dr-ames"
    )
    assert assessed.code == 0, assessed.err
    for actor, command in story.preparation(datetime.now(UTC))[:4]:  # through the support person
        step = command.step  # type: ignore[attr-defined]
        payload = command.model_dump_json(exclude={"step"})  # type: ignore[attr-defined]
        recorded = await cli("record", course, step, "--data", "-", stdin=payload, role=actor.role.value)
        assert recorded.code == 0, (step, recorded.err)

    exported = await cli("export", course, "--fhir", member="dr-ames")
    assert exported.code == 0, exported.err
    document = json.loads(exported.out)
    Bundle.model_validate(document)
    kinds = [e["resource"]["resourceType"] for e in document["entry"]]
    for entry in document["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    assert {"Patient", "CarePlan", "Condition", "Consent", "RelatedPerson", "Provenance"} <= set(kinds)

    operations = await cli("export", course, "--fhir", role="operations")
    assert operations.code == 0, operations.err
    assert "RelatedPerson" not in operations.out and "Sam Support" not in operations.out
    assert "Fewer panic episodes" not in operations.out and "Fewer panic episodes" in exported.out

    assert (await cli("export", str(uuid4()), "--fhir", member="dr-ames")).code == 3
    refused = await cli("export", course, "--fhir", member="dr-lind")
    assert refused.code == 4 and "break_glass_required" in refused.err
    no_format = await cli("export", course, member="dr-ames")
    assert no_format.code == 2 and "--fhir" in no_format.err
    with_since = await cli("export", course, "--fhir", "--since", "1d", member="dr-ames")
    assert with_since.code == 2 and "bulk export" in with_since.err and not with_since.out
