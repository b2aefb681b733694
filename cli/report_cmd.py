"""`course report outcomes [--since TIME] [--format table|csv|json]` and `course rebuild-outcomes`.

The report goes through the API (`GET /reports/outcomes`) as the token's owner, like every read: the
API decides who may read it and records the read. `--since` is checked here first, so a malformed one
is exit 2 before anything is asked. `rebuild-outcomes` is the operator's: it empties the outcome
projection and folds every event again (application/outcomes.py), straight on the database.
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime
from typing import Any

from cli import when
from course.cohorts import CohortFigures, OutcomeReport, nothing_to_report
from worker.settings import Settings

FORMATS = ("table", "csv", "json")
CSV_COLUMNS = (
    "breakdown", "cohort", "suppressed", "courses", "evaluable", "responders", "response_rate", "remitters",
    "remission_rate", "baseline_mean", "latest_mean", "change_mean", "doses_mean", "integration_per_dose_mean",
)  # fmt: skip


class BadSince(ValueError):
    """A --since the CLI cannot read: the message says what it accepts."""


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="the clinic's outcome report: course report outcomes [--since TIME]")
    report.add_argument("which", choices=["outcomes"])
    report.add_argument(
        "--since",
        metavar="TIME",
        help="only courses opened at or after TIME: a date (2026-01-01, midnight UTC), a time with its zone "
        "(2026-01-01T00:00:00+01:00), or how long ago (12w, 90d)",
    )
    report.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv or json")
    report.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # --format json
    rebuild = sub.add_parser("rebuild-outcomes", help="operators: rebuild the outcome projection from the events")
    rebuild.add_argument("--json", action="store_true", help="machine-readable output")


def since(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    cleaned = text.strip()
    try:
        return now - when.duration(cleaned)
    except when.BadTime:
        pass
    try:
        day = datetime.strptime(cleaned, "%Y-%m-%d")
    except ValueError:
        pass
    else:
        return day.replace(tzinfo=UTC)
    try:
        return when.instant(cleaned, now)
    except when.BadTime:
        raise BadSince(
            f"--since {text!r} is not a time: give a date (2026-01-01), a time with its zone "
            "(2026-01-01T09:00:00Z) or how long ago (12w, 90d)"
        ) from None


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from cli.main import OK, InvalidInput, _api  # noqa: PLC0415 - the CLI's own

    if args.command == "rebuild-outcomes":
        return await rebuild(args, settings)
    try:
        start = since(args.since, datetime.now(UTC))
    except BadSince as error:
        raise InvalidInput(str(error)) from None
    async with _api(settings) as api:
        report = await api.outcome_report(start)
    form = "json" if args.json else args.format
    if form == "json":
        print(report.model_dump_json(indent=2))
    elif form == "csv":
        print(as_csv(report), end="")
    else:
        print(as_table(report))
    return OK


async def rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from application.outcomes import OutcomeProjection  # noqa: PLC0415
    from cli.main import OK, _print  # noqa: PLC0415
    from worker.database import create_pool, database_url, migrate  # noqa: PLC0415

    dsn = database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    pool = await create_pool(dsn, max_size=2)
    try:
        projection = OutcomeProjection(pool)
        events = await projection.rebuild()
        position = await projection.checkpoint()
    finally:
        await pool.close()
    _print(args, {"events": events, "checkpoint": position}, f"outcome projection rebuilt: {events} event(s) folded")
    return OK


def as_table(report: OutcomeReport) -> str:
    empty = nothing_to_report(report)
    if empty:
        return empty
    policy = report.thresholds
    period = f"since {report.since:%Y-%m-%d %H:%M} UTC" if report.since else "all courses"
    lines = [
        f"Outcome report ({period}): {report.courses} course(s)",
        f"response: GAD-7 down by at least {policy.mcid}; remission: latest below {policy.remission_below}; "
        f"cohorts of fewer than {policy.minimum_cohort} courses are suppressed",
        "",
        _cohort_table([report.overall]),
    ]
    for name, cohorts in report.breakdowns.items():
        lines += ["", f"by {name.replace('_', ' ')}:", _cohort_table(cohorts)]
    withheld = f"<{policy.minimum_cohort}"
    lines += ["", "funnel (courses reaching each stage; lapsed and withdrawn there):"]
    for stage in report.funnel:
        counts = [withheld if v is None else str(v) for v in (stage.reached, stage.lapsed, stage.withdrawn)]
        lines.append(f"  {stage.stage:<12} {counts[0]:>6}   lapsed {counts[1]:>4}   withdrawn {counts[2]:>4}")
    lines += ["", "mean GAD-7 by week since the first dose:"]
    if report.baseline_mean is not None:
        lines.append(f"  baseline   {report.baseline_mean:>6}")
    lines += [f"  week {w.week:<5} {w.mean:>6}   ({w.courses} courses)" for w in report.trajectory]
    if not report.trajectory:
        lines.append(f"  no week with at least {policy.minimum_cohort} courses")
    return "\n".join(lines)


def _cohort_table(cohorts: list[CohortFigures]) -> str:
    header = (
        f"  {'cohort':<16} {'courses':>7} {'evaluable':>9} {'response':>13} {'remission':>13} "
        f"{'mean change':>11} {'doses':>6} {'integr./dose':>12}"
    )
    rows = [header]
    for c in cohorts:
        if c.suppressed:
            rows.append(f"  {c.cohort:<16} {'suppressed (too few courses)':>40}")
            continue
        rows.append(
            f"  {c.cohort:<16} {c.courses:>7} {c.evaluable:>9} {_rate(c.responders, c.response_rate):>13} "
            f"{_rate(c.remitters, c.remission_rate):>13} {_num(c.change_mean):>11} {_num(c.doses_mean):>6} "
            f"{_num(c.integration_per_dose_mean):>12}"
        )
    return "\n".join(rows) if cohorts else "  (none)"


def _rate(count: int | None, rate: float | None) -> str:
    return "-" if rate is None else f"{count} ({rate:.0%})"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def as_csv(report: OutcomeReport) -> str:
    """One row per cohort (the whole clinic first), suppressed ones with their figures empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, cohorts in [("all", [report.overall]) if report.courses else ("all", []), *report.breakdowns.items()]:
        for c in cohorts:
            figures = c.model_dump()
            writer.writerow([name, *("" if figures[k] is None else figures[k] for k in CSV_COLUMNS[1:])])
    return out.getvalue()
