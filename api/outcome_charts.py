"""The outcome report's three charts, drawn on the server as SVG with matplotlib (as api/gad7_chart.py).

Each is drawn from the report alone (course/cohorts.py), after suppression: a cohort, a week or a
funnel count withheld there is not drawn here, and is labelled as withheld where it would be.
Nothing a chart is given names a course or a patient.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api.gad7_chart import BANDS, _inline
from course.cohorts import OutcomeReport

INK = "#23395d"
LAPSED = "#c77d1a"
WITHDRAWN = "#a33a3a"


@contextmanager
def _figure(salt: str, height: float = 3.0) -> Iterator[tuple[Any, Any]]:
    import matplotlib as mpl  # noqa: PLC0415 - only the report page pays for importing it
    from matplotlib.figure import Figure  # noqa: PLC0415

    # rc_context is process-wide; the console renders on its event loop's one thread, one at a time.
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9}):
        figure = Figure(figsize=(6.4, height))
        yield figure, figure.subplots()


def _svg(figure: Any, title_id: str, title: str) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return _inline(out.getvalue(), title_id, title)


def trajectory_chart(report: OutcomeReport) -> str:
    """Mean GAD-7 per week since the first dose (the baseline at the left), with the severity bands."""
    with _figure("trajectory") as (figure, axes):
        weeks = [w.week for w in report.trajectory]
        high = max([4, *weeks]) + 0.7
        for bottom, top, label, colour in BANDS:
            axes.axhspan(bottom, top, color=colour, zorder=0)
            axes.text(high, (bottom + top) / 2, f" {label}", va="center", ha="left", fontsize=8, color="#555")
        if report.baseline_mean is not None:
            axes.scatter([-1], [report.baseline_mean], marker="s", color=INK, s=30, zorder=3, label="baseline mean")
        if report.trajectory:
            means = [w.mean for w in report.trajectory]
            axes.plot(weeks, means, color=INK, marker="o", linewidth=1.5, zorder=2, label="mean GAD-7 that week")
            for w in report.trajectory:
                axes.annotate(f"n={w.courses}", (w.week, w.mean), textcoords="offset points", xytext=(0, 7),
                              ha="center", fontsize=7, color="#333")  # fmt: skip
        axes.set_xlim(-1.7, high)
        axes.set_ylim(0, 21)
        axes.set_yticks([0, 5, 10, 15, 21])
        axes.set_xticks([-1, *range(0, int(high) + 1)], ["baseline", *map(str, range(0, int(high) + 1))])
        axes.set_xlabel("Weeks since the first dose")
        axes.set_ylabel("Mean GAD-7 score (0-21)")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False, fontsize=8)
        figure.subplots_adjust(left=0.09, right=0.84, top=0.95, bottom=0.32)
        return _svg(figure, "trajectory-title", "Mean GAD-7 score by week since the first dose")


def response_chart(report: OutcomeReport) -> str:
    """Response rate per bucket of integration sessions per dose; suppressed buckets say so."""
    cohorts = report.by_integration_per_dose
    minimum = report.thresholds.minimum_cohort
    with _figure("response") as (figure, axes):
        labels = [c.cohort for c in cohorts] or ["(no course with a dose)"]
        for x, c in enumerate(cohorts):
            if c.suppressed or c.response_rate is None:
                reason = f"fewer than {minimum}" if c.suppressed else "none evaluable"
                axes.text(x, 3, reason, ha="center", va="bottom", fontsize=8, color="#555", rotation=90)
                continue
            axes.bar(x, c.response_rate * 100, color=INK, width=0.6)
            axes.text(x, c.response_rate * 100 + 2, f"{c.response_rate:.0%} of {c.evaluable}", ha="center",
                      va="bottom", fontsize=8)  # fmt: skip
        axes.set_xticks(range(len(labels)), labels)
        axes.set_xlim(-0.6, len(labels) - 0.4)
        axes.set_ylim(0, 110)
        axes.set_yticks([0, 25, 50, 75, 100])
        axes.set_xlabel("Integration sessions per dose")
        axes.set_ylabel(f"Response rate (%, drop >= {report.thresholds.mcid})")
        figure.subplots_adjust(left=0.11, right=0.97, top=0.95, bottom=0.2)
        return _svg(figure, "response-title", "Response rate by integration sessions per dose")


def funnel_chart(report: OutcomeReport) -> str:
    """Courses reaching each stage, and those that lapsed or withdrew having got that far."""
    minimum = report.thresholds.minimum_cohort
    stages = report.funnel
    with _figure("funnel", height=3.4) as (figure, axes):
        ys = list(range(len(stages)))[::-1]
        widest = max([1, *(s.reached or 0 for s in stages)])
        for y, s in zip(ys, stages, strict=True):
            for offset, value, colour in (
                (0.0, s.reached, INK),
                (-0.3, s.lapsed, LAPSED),
                (-0.45, s.withdrawn, WITHDRAWN),
            ):
                if value:
                    axes.barh(y + offset, value, height=0.28 if offset == 0 else 0.14, color=colour)
            said = f"{s.reached}" if s.reached is not None else f"fewer than {minimum}"
            axes.text((s.reached or 0) + widest * 0.01, y, said, va="center", fontsize=8)
        from matplotlib.patches import Patch  # noqa: PLC0415 - as the figure: only for this page

        legend = [Patch(color=c, label=t) for c, t in ((INK, "reached"), (LAPSED, "lapsed there"),
                                                      (WITHDRAWN, "withdrew there"))]  # fmt: skip
        axes.set_yticks(ys, [s.stage for s in stages])
        axes.set_xlim(0, widest * 1.2)
        axes.set_xlabel("Courses")
        axes.set_ylabel("Stage reached")
        axes.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False, fontsize=8)
        figure.subplots_adjust(left=0.17, right=0.97, top=0.96, bottom=0.3)
        return _svg(figure, "funnel-title", "Courses reaching each stage, with lapses and withdrawals")
