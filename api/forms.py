"""HTML forms generated from a step's JSON schema (`model_json_schema()`), and back again.

The schema is the contract `course record --schema` prints, so a new field on a step shows up in
the console without touching a template. Nested objects become dotted names (`vitals.systolic`),
lists of choices become checkboxes, lists of objects a few optional rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from course.labels import choice_words
from course.wording import problems_in_words

ROWS = 3  # rows offered for a list of objects (side effects): enough for one session's report
LONG_TEXT = 500  # a string allowed this long is free text: a textarea


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # text | textarea | integer | number | checkbox | select | choices | lines | datetime
    required: bool = False
    options: list[str] = field(default_factory=list)  # the codes submitted
    option_words: dict[str, str] = field(default_factory=dict)  # code -> what the person reads (course/labels.py)
    description: str | None = None  # the unit or what to enter, from the schema
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    group: str | None = None  # the nested object or row it belongs to, shown as a fieldset legend


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The schema behind $ref / `anyOf [X, null]`, and whether null is allowed."""
    nullable = False
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**options[0], **merged} if options else merged
    if "$ref" in schema:
        target = defs[str(schema["$ref"]).rsplit("/", 1)[-1]]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, nullable


def _label(name: str, schema: Mapping[str, Any]) -> str:
    return str(schema.get("title") or name.replace("_", " ")).replace("Gad7", "GAD-7")


def _enum_name(schema: Mapping[str, Any]) -> str | None:
    """The `$defs` name (the enum's class name) a field's choices come from, if it names one."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if "$ref" in branch:
            return str(branch["$ref"]).rsplit("/", 1)[-1]
    return None


def _words(options: Sequence[Any], enum_name: str | None) -> dict[str, str]:
    return {str(o): choice_words(str(o), enum_name) for o in options}


def form_fields(model: type[BaseModel]) -> list[FormField]:
    schema = model.model_json_schema()
    return _object_fields(schema, schema.get("$defs", {}), prefix="", required=True, group=None)


def _object_fields(
    schema: Mapping[str, Any], defs: Mapping[str, Any], *, prefix: str, required: bool, group: str | None
) -> list[FormField]:
    fields: list[FormField] = []
    needed = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        if "const" in raw:
            continue  # the step's discriminator: the URL already says which step
        sub, nullable = _resolve(raw, defs)
        path = f"{prefix}{name}"
        is_required = required and name in needed and not nullable
        label = _label(name, raw if "title" in raw else sub)
        kind = sub.get("type")
        if kind == "object":
            fields += _object_fields(sub, defs, prefix=f"{path}.", required=is_required, group=label)
        elif kind == "array":
            item, _ = _resolve(sub.get("items", {}), defs)
            if item.get("type") == "object":
                one = label.removesuffix("s")  # a row is one side effect
                for row in range(ROWS):
                    fields += _object_fields(
                        item, defs, prefix=f"{path}.{row}.", required=False, group=f"{one} {row + 1}"
                    )
            elif "enum" in item:
                options = list(item["enum"])
                words = _words(options, _enum_name(sub.get("items", {})))
                fields.append(FormField(path, label, "choices", options=options, option_words=words, group=group))
            else:
                fields.append(FormField(path, label, "lines", is_required, group=group))
        else:
            scalar = _scalar(path, label, sub, is_required, group=group, default=raw.get("default"))
            scalar.description = raw.get("description") or sub.get("description")
            if scalar.options:
                scalar.option_words = _words(scalar.options, _enum_name(raw))
            fields.append(scalar)
    return fields


def _scalar(
    path: str, label: str, schema: Mapping[str, Any], required: bool, *, group: str | None, default: Any
) -> FormField:
    kind = schema.get("type")
    if "enum" in schema:
        return FormField(path, label, "select", required, options=list(schema["enum"]), group=group, default=default)
    if kind == "boolean":
        return FormField(path, label, "checkbox", group=group, default=default)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return FormField(
            path, label, str(kind), required, minimum=low, maximum=schema.get("maximum"), group=group, default=default
        )
    if schema.get("format") == "date-time":
        return FormField(path, label, "datetime", required, group=group)
    long_text = int(schema.get("maxLength", 0)) >= LONG_TEXT
    return FormField(path, label, "textarea" if long_text else "text", required, group=group, default=default)


def payload_from_form(fields: Sequence[FormField], form: Mapping[str, Sequence[str]], time_zone: str) -> dict[str, Any]:
    """The JSON payload the form describes; empty inputs are left out so defaults and nulls apply."""
    payload: dict[str, Any] = {}
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for f in fields:
        values = [v for v in form.get(f.name, []) if v.strip()]
        value: Any
        if f.kind == "checkbox":
            value = bool(values)
        elif f.kind == "choices":
            value = values
        elif not values:
            continue
        elif f.kind == "lines":
            value = [line.strip() for line in values[0].splitlines() if line.strip()]
        elif f.kind == "datetime":
            value = _aware(values[0].strip(), time_zone)
        else:
            value = values[0].strip()
        parts = f.name.split(".")
        if len(parts) >= 3 and parts[1].isdigit():  # a row of a list of objects
            rows.setdefault(parts[0], {}).setdefault(int(parts[1]), {})[".".join(parts[2:])] = value
            continue
        _put(payload, parts, value)
    for name, by_row in rows.items():
        payload[name] = [_nest(row) for _, row in sorted(by_row.items())]
    return payload


def _aware(value: str, time_zone: str) -> str:
    """`datetime-local` has no zone: it is the clinic's local time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # pydantic explains what is wrong with it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone))
    return moment.isoformat()


def _put(target: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _nest(row: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in row.items():
        _put(nested, key.split("."), value)
    return nested


def errors_by_field(error: ValidationError, model: type[BaseModel] | None = None) -> dict[str, str]:
    """Field path -> the problem in words (course/wording.py), shown beside the field on the form
    of the person who typed it (so a reading is named); pages are never logged."""
    return problems_in_words(error.errors(), model, echo=True)
