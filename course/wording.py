"""What a clinician reads when a form or a payload is not right: the field in words, and why.

Pydantic's own messages are developer text ("Input should be less than or equal to 300") and
echo the input. Here each problem becomes a sentence a nurse can act on ("400 is not a plausible
systolic blood pressure: enter a reading from 50 to 300 mmHg"). The value is said only with
`echo=True`, for the person who just typed it (the CLI's terminal, the console's form); what is
logged or returned to other systems (the API's problem details) carries the field and the reason,
never the value. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

# Readings a person measures: a value outside the bounds is implausible, not merely "too large".
MEASUREMENTS = frozenset({"systolic", "diastolic", "heart_rate", "gad7", "new_dose_mg_per_kg", "dose_mg_per_kg"})
UNITS: Mapping[str, str] = {
    "systolic": " mmHg",
    "diastolic": " mmHg",
    "heart_rate": " beats per minute",
    "dose_mg_per_kg": " mg/kg",
    "new_dose_mg_per_kg": " mg/kg",
    "starting_dose_mg_per_kg": " mg/kg",
    "max_dose_mg_per_kg": " mg/kg",
    "interval_days": " days",
}
# Words for field names whose spelling in code is not how a clinician says them. A field's own
# `title` (its schema) comes first; this covers models without one.
FIELD_WORDS: Mapping[str, str] = {
    "systolic": "systolic blood pressure",
    "diastolic": "diastolic blood pressure",
    "gad7": "GAD-7 score",
    "dose_mg_per_kg": "dose",
    "new_dose_mg_per_kg": "new dose",
    "starting_dose_mg_per_kg": "starting dose",
    "max_dose_mg_per_kg": "maximum dose",
    "vitals": "pre-dose vitals",
    "post_vitals": "post-dose vitals",
    "held_at": "time the session was held",
    "scheduled_at": "scheduled time",
    "signed_at": "time of signature",
    "ride_home_arranged": "ride home arranged",
    "blood_pressure": "blood pressure",
    "interval_days": "interval (days)",
    "clinician_id": "prescriber",
    "therapist_id": "therapist",
    "patient_id": "patient reference",
}

_JSON_PROBLEMS: Sequence[tuple[str, str]] = (
    ("key must be a string", "a key must be in double quotes"),
    ("EOF while parsing", "it ends before it is complete (a missing } or ])"),
    ("trailing comma", "there is a comma before a closing } or ]"),
    ("expected value", "a value is missing or is not JSON (text needs double quotes)"),
    ("expected `,` or `}`", "a comma or a closing } is missing"),
    ("expected `,` or `]`", "a comma or a closing ] is missing"),
    ("expected `:`", "a colon is missing after a key"),
    ("invalid escape", "a backslash escape is not valid"),
)
_AT = re.compile(r"at line (\d+) column (\d+)")
_WORDS = {"Gad7": "GAD-7", "gad7": "GAD-7"}


def _field_info(model: type[BaseModel] | None, loc: Sequence[str | int]) -> tuple[str | None, str | None]:
    """The title of the field at `loc` in `model`, if the model gives one, and its last name."""
    title: str | None = None
    name: str | None = None
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        name = part
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            title, current = None, None
            continue
        info = fields[part]
        # pydantic's automatic title is the name capitalised: only an explicit one is words.
        title = info.title
        current = _model_of(info.annotation)
    return title, name


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def field_in_words(loc: Sequence[str | int], model: type[BaseModel] | None = None) -> str:
    """`("post_vitals", "systolic")` -> "systolic blood pressure (post-dose vitals)": the field
    first, where it sits after; list rows are counted from 1 ("severity (side effect 2)")."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            if parts:
                parts[-1] = f"{parts[-1].removesuffix('s')} {part + 1}"
            continue
        title, _ = _field_info(model, loc[: index + 1]) if model else (None, None)
        words = _in_sentence(title) if title else FIELD_WORDS.get(part) or _WORDS.get(part) or part.replace("_", " ")
        parts.append(words.strip())
    if not parts:
        return "the payload"
    return parts[-1] + (f" ({', '.join(reversed(parts[:-1]))})" if len(parts) > 1 else "")


def _in_sentence(title: str) -> str:
    """A title is written as a label ("Post-dose vitals"); inside a sentence it reads in lower case,
    but an acronym keeps its capitals ("GAD-7 score", "IV route")."""
    if title[1:2].isupper():
        return title
    return title[:1].lower() + title[1:]


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def problem_in_words(error: Mapping[str, Any], model: type[BaseModel] | None = None, *, echo: bool = False) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a sentence."""
    loc = [p for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    field = field_in_words(loc, model)
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    unit = UNITS.get(name, "")
    value = error.get("input")
    shown = echo and isinstance(value, int | float) and not isinstance(value, bool)
    measured = name in MEASUREMENTS
    match kind:
        case "missing":
            return f"{_capital(field)} is missing."
        case "less_than_equal" | "less_than" | "greater_than_equal" | "greater_than":
            return _bound(kind, ctx, field, unit, _number(value) if shown else None, measured)
        case "int_parsing" | "int_type" | "int_from_float":
            return f"{_capital(field)} must be a whole number."
        case "float_parsing" | "float_type" | "decimal_parsing":
            return f"{_capital(field)} must be a number{unit and ' (in' + unit + ')'}."
        case "bool_parsing" | "bool_type":
            return f"{_capital(field)} must be yes or no (true or false)."
        case "enum" | "literal_error":
            expected = str(ctx.get("expected", "")).replace("'", "")
            return f"{_capital(field)} must be one of: {expected}."
        case "datetime_parsing" | "datetime_type" | "datetime_from_date_parsing" | "date_parsing":
            return f"{_capital(field)} needs a date and a time with its zone, like 2026-12-03T15:00:00Z."
        case "timezone_aware":
            return f"{_capital(field)} needs its zone: add Z for UTC or the clinic's offset, like +01:00."
        case "string_too_short":
            return f"{_capital(field)} must not be empty."
        case "string_too_long":
            return f"{_capital(field)} is too long: at most {ctx.get('max_length')} characters."
        case "too_long":
            return f"{_capital(field)} has too many entries: at most {ctx.get('max_length')}."
        case "too_short":
            return f"{_capital(field)} needs at least {ctx.get('min_length')} entry."
        case "string_pattern_mismatch":
            return f"{_capital(field)} has characters it cannot hold (letters, digits and . _ : - only)."
        case "string_type":
            return f"{_capital(field)} must be text in double quotes."
        case "extra_forbidden":
            parent = field_in_words(loc[:-1], model) if len(loc) > 1 else "this step"
            return f"{name!r} is not a field of {parent} (a typo?); `course record --schema STEP` lists them."
        case "model_type" | "model_attributes_type" | "dict_type":
            return f'{_capital(field)} must be an object, like {{"name": value}}.'
        case "list_type":
            return f'{_capital(field)} must be a list, like ["first", "second"].'
        case "json_invalid" | "json_type":
            return json_in_words(str(ctx.get("error", error.get("msg", ""))))
        case "value_error" | "assertion_error":
            reason = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            return f"{_capital(field)}: {reason}." if loc else f"{_capital(reason)}."
    reason = str(error.get("msg", "is not valid"))
    return f"{_capital(field)}: {reason[0].lower() + reason[1:] if reason else reason}."


def _bound(  # noqa: PLR0917 - the parts of one sentence, each worked out by the caller
    kind: str, ctx: Mapping[str, Any], field: str, unit: str, value: str | None, measured: bool
) -> str:
    limit = _number(ctx.get("le", ctx.get("lt", ctx.get("ge", ctx.get("gt")))))
    side = {
        "less_than_equal": f"at most {limit}",
        "less_than": f"less than {limit}",
        "greater_than_equal": f"at least {limit}",
        "greater_than": f"more than {limit}",
    }[kind]
    if measured:
        start = f"{value}{unit} is not a plausible {field}" if value else f"This {field} is not plausible"
        return f"{start}: it must be {side}{unit}."
    return f"{_capital(field)} must be {side}{unit}" + (f", not {value}." if value else ".")


def json_in_words(text: str) -> str:
    """`Invalid JSON: key must be a string at line 1 column 29` -> where and what, in words."""
    where = _AT.search(text)
    place = f" (line {where.group(1)}, column {where.group(2)})" if where else ""
    what = next((words for marker, words in _JSON_PROBLEMS if marker in text), "it is not valid JSON")
    return f"The payload is not valid JSON: {what}{place}."


def problems_in_words(
    errors: Sequence[Mapping[str, Any]], model: type[BaseModel] | None = None, *, echo: bool = False
) -> dict[str, str]:
    """Field path -> its first problem in words (a form shows one sentence per field)."""
    found: dict[str, str] = {}
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")) or "payload"
        found.setdefault(path, problem_in_words(error, model, echo=echo))
    return found


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
