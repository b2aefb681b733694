"""Run the benchmarks and regenerate bench/RESULTS.md from what they printed.

    python -m bench all [--only a,b] [--skip a,b] [--quick] [--profile]
    python -m bench render

`all` runs each script in its own process, one at a time (they share the machine's two cores),
with the sizes RESULTS.md reports, keeps each script's `RESULT {json}` line in
`bench/results/NAME.json`, then renders RESULTS.md from every file there. `--only` re-runs some
scripts and keeps the others' files, so each table says which commit, machine and load made it.
`bench/results/before/` holds the runs the before/after table compares with (issue 21: the
commit before the performance work), made by the same scripts. `render` only rewrites RESULTS.md.
`--profile` samples the worker with py-spy during the throughput runs (bench/profiles/).
Nothing here asserts a number: RESULTS.md shows each ratio beside its target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BEFORE = RESULTS / "before"
PROFILES = HERE / "profiles"

# The runs RESULTS.md reports, in the order they run: the four the targets rest on first.
RUNS: dict[str, list[str]] = {
    "history": [],
    "latency": [],
    "throughput": ["--sizes", "200,1000", "--upserts"],
    "memory": ["--mid-dosing", "300", "--open", "300", "--caches", "1000"],
    "append": [],
    "rebuild": [],
    "outcomes": [],
    "verify": [],
    "schedules": ["--courses", "200,1000"],
    "fhir_export": ["--courses", "2000"],
    "smtp_outage": ["--quick"],
}

# The rows of the summary: (script, key, what it is). A key that holds a ratio has its target in
# the script's own RESULT (`targets`), so the table cannot drift from the scripts.
SUMMARY: list[tuple[str, str, str]] = [
    ("throughput", "n200_ratio", "throughput, 200 concurrent courses (course / same shape)"),
    ("throughput", "n1000_ratio", "throughput, 1,000 concurrent courses (course / same shape)"),
    ("latency", "unloaded_p95_ratio", "step latency p95, unloaded (course / bare update)"),
    ("latency", "loaded_p95_ratio", "step latency p95, 200 courses (course / same shape)"),
    ("history", "course_vs_baseline_events", "history events, six-session course (course / same shape)"),
    ("memory", "mid_dosing_kib_per_cached_course", "KiB per cached course, mid-dosing"),
    ("append", "c1_store_vs_raw", "append, 1 writer (store / raw inserts)"),
    ("append", "c16_store_vs_raw", "append, 16 writers (store / raw inserts)"),
]
# Numbers beside the ratios in the before/after table.
DETAILS: list[tuple[str, str, str]] = [
    ("throughput", "n200_course_courses_per_s", "courses/s at 200"),
    ("throughput", "n1000_course_courses_per_s", "courses/s at 1,000"),
    ("latency", "unloaded_course_ms", "step latency, unloaded (ms)"),
    ("latency", "loaded_course_ms", "step latency, 200 courses (ms)"),
    ("latency", "open_with_first_step", "open + first step (one call)"),
    ("latency", "open_then_first_step", "open, then first step (two calls)"),
    ("history", "course_history", "course history"),
    ("history", "course_beyond_shape", "beyond the shape"),
]
_SKIP = {"bench", "quick", "command", "machine", "targets", "load_average_end", "seconds"}


def run_all(names: list[str], quick: bool, profile: bool) -> int:
    folder = RESULTS / "quick" if quick else RESULTS  # a smoke run never replaces a reported one
    folder.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        args = ["--quick"] if quick else list(RUNS[name])
        if profile and name == "throughput":
            args += ["--profile", str(PROFILES)]
        command = [sys.executable, "-m", f"bench.{name}", *args]
        print(f"== {time.strftime('%H:%M:%S')} {' '.join(command[1:])}", flush=True)
        finished = subprocess.run(command, cwd=HERE.parent, capture_output=True, text=True, check=False)
        lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
        if finished.returncode != 0 or not lines:
            failed.append(name)
            print(finished.stdout[-2000:] + finished.stderr[-2000:], flush=True)
            continue
        result = json.loads(lines[-1].removeprefix("RESULT "))
        (folder / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"   {result['seconds']} s, load {result['machine']['load_average']} -> {result['load_average_end']}")
    if not quick:
        render()
    if failed:
        print(f"failed: {', '.join(failed)} (their earlier results, if any, were kept)", flush=True)
    return 1 if failed else 0


def _load(folder: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    return str(value).replace("|", "/")


def _provenance(result: dict[str, Any]) -> str:
    machine = result["machine"]
    return (
        f"`{result['command']}` on `{machine['source']}`, {machine['date']}; {machine['nproc']} cores, "
        f"{machine['memory_mib']:,} MiB, Python {machine['python']}, temporalio {machine['temporalio']}; "
        f"load average {machine['load_average'][0]} at the start, {result.get('load_average_end', ['?'])[0]} "
        f"at the end; {result.get('seconds', '?')} s"
    )


def _met(value: Any, target: str | None) -> str:
    if target is None or not isinstance(value, int | float):
        return ""
    sign, _, bound = target.partition(" ")
    try:
        limit = float(bound.split()[0])
    except (ValueError, IndexError):
        return ""
    return "met" if (value <= limit if sign == "<=" else value >= limit) else "missed"


def render() -> None:
    now, before = _load(RESULTS), _load(BEFORE)
    out = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench all` (or `python -m bench render` from the kept results): do not",
        "edit by hand. What each script does: [README.md](README.md). What the numbers led to, and what was",
        "tried and rejected: [FINDINGS.md](FINDINGS.md). Every ratio is against a baseline the same script",
        "measured on the same stack in the same run, so a busy machine slows both sides; each table says",
        "the command, the commit, the machine and the load it ran under.",
        "",
        "## Targets",
        "",
        "| measure | before | now | target | |",
        "|---|---|---|---|---|",
    ]
    for script, key, label in SUMMARY:
        result = now.get(script, {})
        target = result.get("targets", {}).get(key)
        old = before.get(script, {}).get(key, "")
        value = result.get(key, "not run")
        out.append(f"| {label} | {_value(old)} | {_value(value)} | {target or ''} | {_met(value, target)} |")
    out += ["", "## Before and after", ""]
    if before:
        commits = sorted({r["machine"]["source"] for r in before.values()})
        out.append(f"Before: {', '.join(f'`{c}`' for c in commits)} (`bench/results/before/`). Now: the tables below.")
        out += ["", "| measure | before | now |", "|---|---|---|"]
        for script, key, label in SUMMARY + DETAILS:
            if key in before.get(script, {}) or key in now.get(script, {}):
                old, new = before.get(script, {}).get(key, ""), now.get(script, {}).get(key, "")
                out.append(f"| {label} | {_value(old)} | {_value(new)} |")
    else:
        out.append("No earlier runs kept in `bench/results/before/`.")
    profiles = sorted(PROFILES.glob("*.json")) if PROFILES.exists() else []
    if profiles:
        out += ["", "Profiles of the worker (py-spy, speedscope format; open at https://www.speedscope.app):"]
        out += [f"- [`{p.name}`](profiles/{p.name})" for p in profiles]
    for name in RUNS:
        if name not in now:
            continue
        result = now[name]
        targets = result.get("targets", {})
        out += ["", f"## {name}", "", _provenance(result), "", "| number | value | target |", "|---|---|---|"]
        for key, value in result.items():
            if key not in _SKIP:
                out.append(f"| {key} | {_value(value)} | {targets.get(key, '')} |")
    (HERE / "RESULTS.md").write_text("\n".join(out) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}", flush=True)


def main() -> int:
    parsed = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parsed.add_argument("what", choices=["all", "render"])
    parsed.add_argument("--only", help="comma-separated scripts to run (the others' results are kept)")
    parsed.add_argument("--skip", help="comma-separated scripts not to run")
    parsed.add_argument("--quick", action="store_true", help="each script's --quick sizes (a smoke run)")
    parsed.add_argument("--profile", action="store_true", help="py-spy profiles of the throughput runs")
    args = parsed.parse_args()
    if args.what == "render":
        render()
        return 0
    names = args.only.split(",") if args.only else list(RUNS)
    names = [n for n in names if n not in set((args.skip or "").split(","))]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parsed.error(f"unknown scripts: {', '.join(unknown)} (known: {', '.join(RUNS)})")
    return run_all(names, args.quick, args.profile)


if __name__ == "__main__":
    sys.exit(main())
