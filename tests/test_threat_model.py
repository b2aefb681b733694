"""docs/privacy.md's threat model stays honest: every test it cites exists, every threat has a
status, and an open one names the issue item that will close it instead of claiming a control."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRIVACY = ROOT / "docs" / "privacy.md"

# `tests/x/test_y.py::test_z` or `tests/x/test_y.py`, and the `::test_w` that follow it in the same cell.
_CITATION = re.compile(r"`(?P<file>tests/[\w/]+\.py)?(?:::(?P<test>test_\w+))?`")


def _threat_rows() -> list[list[str]]:
    text = PRIVACY.read_text()
    section = text[
        text.index("### Threats, controls and the tests that show them") : text.index("## Controls in detail")
    ]
    rows = [line for line in section.splitlines() if re.match(r"\| T\d+ \|", line)]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def _tests_defined_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_cited_test_exists() -> None:
    cited = 0
    for row in _threat_rows():
        current: Path | None = None
        for m in _CITATION.finditer(row[5]):
            if not m.group("file") and not m.group("test"):
                continue
            if m.group("file"):
                current = ROOT / m.group("file")
                assert current.is_file(), f"{row[0]}: {m.group('file')} does not exist"
            assert current is not None, f"{row[0]}: ::{m.group('test')} without a file before it"
            if not m.group("test"):
                continue
            assert m.group("test") in _tests_defined_in(current), f"{row[0]}: {current.name}::{m.group('test')}"
            cited += 1
    assert cited >= 20


def test_every_threat_has_a_status_and_an_open_one_names_its_issue_item() -> None:
    rows = _threat_rows()
    assert len(rows) >= 15
    for number, threat, _asset, _control, status, shown_by in rows:
        assert "**open**" in status or "**controlled**" in status, f"{number}: no status"
        if status.startswith("**open**"):
            assert re.search(r"issue \d+ items? \d+", status), f"{number}: which issue item closes it?"
        else:
            assert "::test_" in shown_by, f"{number} ({threat[:40]}...) claims a control without a test"


def test_the_threats_of_issue_16_are_all_there() -> None:
    threats = " ".join(row[1] for row in _threat_rows())
    for words in (
        "plain `temporalio` client",
        "replayed into another",
        "--actor",
        "`policy` from the caller",
        "whole record",
        "cookie",
        "passwords `temporal` and `course`",
        "superuser",
        "Temporal UI",
    ):
        assert words in threats, words
