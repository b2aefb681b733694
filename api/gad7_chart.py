"""The GAD-7 chart of the console's course page: drawn on the server as SVG with matplotlib.

Axes a clinician can read (weeks since the first dose, score 0-21), the severity bands at 5/10/15
shaded and labelled, and a legend. The page's CSP allows no inline style (`style-src 'self'`), and
matplotlib writes its colours as `style` attributes: they are rewritten as SVG presentation
attributes (`fill="#fff"`), which no CSP governs, so the chart draws exactly as rendered. Text
stays text (`svg.fonttype: none`): no font is embedded or fetched, and the labels are searchable.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Source = Literal["assessment", "dose", "integration", "maintenance"]


@dataclass(frozen=True)
class Gad7Score:
    at: datetime
    score: int
    source: Source


# GAD-7 severity (Spitzer et al. 2006): 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe.
BANDS = (
    (0, 5, "minimal", "#e8f4ec"),
    (5, 10, "mild", "#f4f4e0"),
    (10, 15, "moderate", "#f8ead8"),
    (15, 21, "severe", "#f6dcdc"),
)
MARKERS: dict[Source, tuple[str, str]] = {
    "assessment": ("s", "baseline (assessment)"),
    "dose": ("o", "after a dose"),
    "integration": ("^", "integration session"),
    "maintenance": ("D", "maintenance session"),
}
_WEEK = 7 * 24 * 3600
_STYLE = re.compile(r' style="([^"]*)"')
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_STYLE_ELEMENT = re.compile(r"\s*<style[^>]*>.*?</style>", re.DOTALL)
_SIZE = re.compile(r' width="[0-9.]+pt" height="[0-9.]+pt"')


def gad7_chart(scores: Sequence[Gad7Score]) -> str:
    """An inline `<svg>` of the scores, earliest first; weeks are counted from the first dose (or,
    before any dose, from the first score: the axis says which)."""
    import matplotlib as mpl  # noqa: PLC0415 - only the course page pays for importing it
    from matplotlib.figure import Figure  # noqa: PLC0415

    doses = [s.at for s in scores if s.source == "dose"]
    origin = doses[0] if doses else scores[0].at
    weeks = [(s.at - origin).total_seconds() / _WEEK for s in scores]
    # rc_context is process-wide; the console renders on its event loop's one thread, one at a time.
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gad7", "font.size": 9}):
        figure = Figure(figsize=(6.4, 3.0))
        axes = figure.subplots()
        low, high = min([0.0, *weeks]) - 0.5, max([1.0, *weeks]) + 0.5
        for bottom, top, label, colour in BANDS:
            axes.axhspan(bottom, top, color=colour, zorder=0)
            axes.text(high, (bottom + top) / 2, f" {label} ({bottom}-{top - 1 if top < 21 else 21})",
                      va="center", ha="left", fontsize=8, color="#555")  # fmt: skip
        axes.plot(weeks, [s.score for s in scores], color="#23395d", linewidth=1.5, label="GAD-7 score", zorder=2)
        for source, (marker, label) in MARKERS.items():
            points = [(w, s.score) for w, s in zip(weeks, scores, strict=True) if s.source == source]
            if points:
                xs, ys = zip(*points, strict=True)
                axes.scatter(xs, ys, marker=marker, color="#23395d", s=28, label=label, zorder=3)
        axes.set_xlim(low, high)
        axes.set_ylim(0, 21)
        axes.set_yticks([0, 5, 10, 15, 21])
        axes.set_xlabel("Weeks since the first dose" if doses else "Weeks since the first score")
        axes.set_ylabel("GAD-7 score (0-21)")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False, fontsize=8)
        figure.subplots_adjust(left=0.09, right=0.78, top=0.95, bottom=0.34)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _inline(out.getvalue())


def _inline(
    svg: str, title_id: str = "gad7-title", title: str = "GAD-7 score over the course, with severity bands"
) -> str:
    """matplotlib's file as an element for the page: no XML preamble, no metadata, no `style`."""
    svg = _PREAMBLE.sub("", svg, count=1)
    svg = _METADATA.sub("", svg, count=1)
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE.sub(_as_attributes, svg)
    return _SIZE.sub(
        f' class="chart" role="img" aria-labelledby="{title_id}" stroke-linejoin="round" stroke-linecap="butt"',
        svg,
        count=1,
    ).replace(">", f'><title id="{title_id}">{title}</title>', 1)


def _as_attributes(found: re.Match[str]) -> str:
    declarations = (part.split(":", 1) for part in found.group(1).split(";") if ":" in part)
    return "".join(f' {name.strip()}="{value.strip()}"' for name, value in declarations)
