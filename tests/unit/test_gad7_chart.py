"""The console's GAD-7 chart: axes, severity bands and a legend a clinician reads, as SVG the page's
strict CSP draws (no script, no inline style)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from api.console import gad7_trend
from api.gad7_chart import Gad7Score, gad7_chart

NOW = datetime.now(UTC)
SCORES = [
    Gad7Score(NOW - timedelta(days=10), 15, "assessment"),
    Gad7Score(NOW, 11, "dose"),
    Gad7Score(NOW + timedelta(days=2), 10, "integration"),
    Gad7Score(NOW + timedelta(days=60), 6, "maintenance"),
]


def _texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return ["".join(node.itertext()).strip() for node in root.iter("{http://www.w3.org/2000/svg}text")]


def test_the_chart_has_axes_severity_bands_and_a_legend() -> None:
    texts = _texts(gad7_chart(SCORES))
    assert "Weeks since the first dose" in texts and "GAD-7 score (0-21)" in texts
    assert {"0", "5", "10", "15", "21"} <= set(texts)  # the score axis, 0 to 21
    for band in ("minimal (0-4)", "mild (5-9)", "moderate (10-14)", "severe (15-21)"):
        assert band in texts
    for entry in ("GAD-7 score", "baseline (assessment)", "after a dose", "integration session", "maintenance session"):
        assert entry in texts


def test_before_any_dose_the_weeks_count_from_the_first_score() -> None:
    texts = _texts(gad7_chart(SCORES[:1]))
    assert "Weeks since the first score" in texts and "after a dose" not in texts


def test_the_svg_draws_under_the_consoles_csp_and_embeds_nothing() -> None:
    svg = gad7_chart(SCORES)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert not re.search(r"\sstyle=", svg) and "<style" not in svg  # style-src 'self': no inline style
    assert "<script" not in svg and "<?xml" not in svg and "<metadata" not in svg
    assert "@font-face" not in svg and "base64" not in svg  # no font embedded or fetched
    assert 'fill="#f6dcdc"' in svg  # the severe band's colour, as an attribute CSP does not govern
    assert '<title id="gad7-title">' in svg and 'role="img"' in svg


def test_the_course_page_trend_takes_each_score_when_it_was_taken() -> None:
    held = (NOW - timedelta(hours=3)).isoformat()
    events = [
        {"type": "AssessmentRecorded", "occurred_at": (NOW - timedelta(days=9)).isoformat(), "data": {"gad7": 15}},
        {"type": "ConsentRecorded", "occurred_at": NOW.isoformat(), "data": {"form_version": "2026-01"}},
        {"type": "IntegrationSessionRecorded", "occurred_at": NOW.isoformat(), "data": {"gad7": 9, "held_at": held}},
        {
            "type": "DosingSessionCompleted",
            "occurred_at": (NOW - timedelta(days=1)).isoformat(),
            "data": {"gad7": None},
        },
    ]
    trend = gad7_trend(events)
    assert [(row["score"], row["what"]) for row in trend["scores"]] == [
        (15, "baseline (assessment)"),
        (9, "integration session"),
    ]
    assert trend["scores"][1]["at"] == datetime.fromisoformat(held)
    assert "<svg" in trend["svg"]
    assert gad7_trend(events[1:2]) == {"scores": [], "svg": None}
