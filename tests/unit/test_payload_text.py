"""Free text in a step is what a clinician can type: no control characters, no lone surrogates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from course.commands import RecordIntentions, RecordOrientation, RecordSupportPerson

SECRET = "Ada-Lovelace"


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[2J", "\x7f", "\ud800"])
def test_a_step_with_an_unprintable_character_is_refused_without_echoing_the_text(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RecordIntentions(goals=f"{SECRET}{bad}")
    error = refused.value.errors(include_input=False)[0]
    assert error["loc"] == ("goals",)
    # pydantic's own check refuses a lone surrogate before ours runs; either way it is refused.
    assert "control characters" in error["msg"] or error["type"] == "string_unicode", error
    assert SECRET not in str(error)


def test_text_in_lists_and_every_string_field_is_checked() -> None:
    with pytest.raises(ValidationError):
        RecordOrientation(topics=["dosing day", "no\x00"])
    with pytest.raises(ValidationError):
        RecordSupportPerson(name="Sam", relationship="spouse\x00", phone="07700 900123")


def test_line_breaks_and_tabs_in_notes_are_kept() -> None:
    goals = "sleep better\n\tand worry less\r\n"
    assert RecordIntentions(goals=goals).goals == goals
