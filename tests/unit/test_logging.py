"""Logs: staff can find a course from a log line, but never read the patient's data in one."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from course.commands import BloodPressure, Condition, RecordAssessment, RecordSupportPerson
from worker.logging import MASK, configure_logging, masked

MARKER = "Grace-Hopper-07700-900456"


def test_a_support_persons_details_and_free_text_never_reach_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    structlog.get_logger("test").info(
        "support person recorded",
        patient_id="pt-1042",
        name=MARKER,
        Phone=MARKER,
        goals=f"feel less anxious, says {MARKER}",
        step={"support_person": {"name": MARKER}, "kind": "support-person"},
        readings=[{"blood_pressure": {"systolic": 128}, "gad7": 15, "session_number": 2}],
        command=RecordSupportPerson(name=MARKER, relationship="spouse", phone="07700 900456"),
    )
    out, err = capfd.readouterr()
    assert MARKER not in out + err
    line = json.loads(err.strip().splitlines()[-1])
    assert line["patient_id"] == "pt-1042"  # the pseudonymous id stays: staff need it
    assert line["name"] == line["Phone"] == line["goals"] == MASK
    assert line["step"] == {"support_person": MASK, "kind": "support-person"}
    assert line["readings"] == [{"blood_pressure": MASK, "gad7": MASK, "session_number": 2}]
    assert line["command"]["step"] == "support-person" and line["command"]["phone"] == MASK


def test_library_records_pass_the_same_masking(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    library = logging.getLogger("temporalio.workflow")
    library.warning("step rejected: %s", {"rationale": MARKER, "step": "clinical-review"})
    assessment = RecordAssessment(
        blood_pressure=BloodPressure(systolic=151, diastolic=97), heart_rate=83, condition=Condition.GAD, gad7=17
    )
    library.warning("assessment %s", assessment)
    library.info("extra fields are not rendered", extra={"notes": MARKER})
    out, err = capfd.readouterr()
    assert MARKER not in out + err
    rejected, assessed, extra = (json.loads(line) for line in err.strip().splitlines()[-3:])
    assert rejected["logger"] == "temporalio.workflow"
    assert rejected["event"] == f"step rejected: {{'rationale': '{MASK}', 'step': 'clinical-review'}}"
    assert "151" not in assessed["event"] and "'gad7': '[masked]'" in assessed["event"]
    assert extra["event"] == "extra fields are not rendered" and "notes" not in extra


def test_console_output_for_people_is_masked_too(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "INFO")
    structlog.get_logger("test").info("intentions recorded", patient_id="pt-1042", goals=MARKER)
    logging.getLogger("temporalio.activity").warning("review: %(rationale)s", {"rationale": MARKER})
    out, err = capfd.readouterr()
    assert MARKER not in out + err
    assert "pt-1042" in err and err.count(MASK) == 2


def test_configuring_twice_logs_each_record_once(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    configure_logging("json", "INFO")
    logging.getLogger("temporalio.activity").warning("once")
    _, err = capfd.readouterr()
    assert err.count('"once"') == 1


def test_masking_reaches_into_nested_lists_and_leaves_other_values_alone() -> None:
    event = {"events": [{"type": "IntentionsRecorded", "data": {"goals": MARKER}}], "version": 3}
    assert masked(event) == {"events": [{"type": "IntentionsRecorded", "data": {"goals": MASK}}], "version": 3}
