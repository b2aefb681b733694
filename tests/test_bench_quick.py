"""The benchmarks still run: each bench script with --quick exits 0 and prints its numbers.

No timed assertions: a benchmark's numbers go to bench/RESULTS.md, never into a pass or a fail.
Each script starts its own Temporal dev server and throwaway PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

# The numbers each script must print (a key, or a key suffix for sizes chosen at run time).
EXPECTED = {
    "throughput": [
        "_course_courses_per_s",
        "_baseline_courses_per_s",
        "_ratio",
        "course_history",
        "_course_cpu_ms_per_course",
        "_upserting_baseline_courses_per_s",
    ],
    "latency": ["unloaded_course_ms", "unloaded_baseline_ms", "unloaded_p95_ratio", "loaded_p95_ratio"],
    "append": ["c1_store_events_per_s", "c1_raw_events_per_s", "c16_store_vs_raw"],
    "memory": ["mid_dosing_kib_per_cached_course", "baseline_shape_kib_per_cached_run", "_rss_mib_by_open_courses"],
    "history": ["course_events", "baseline_history", "per_maintenance_cycle", "longest_run_events"],
    "rebuild": ["rebuild_events_per_s", "raw_read_events_per_s", "rebuild_vs_raw_read"],
    "outcomes": ["rebuild_events_per_s", "catch_up_one_course_ms", "high_water_lock_ms", "report_read_ms"],
    "verify": ["verify_ms_per_1000_events", "sign_us_per_step", "check_us_per_step"],
    "schedules": ["reconcile_20_courses_median_s", "huddle_20_courses_median_s"],
    "fhir_export": ["_seconds", "_peak_rss_mib", "_rss_mib_by_courses_done", "peak_rss_large_vs_small"],
    "smtp_outage": ["healthy_ms", "outage_ms", "outage_p95_ratio", "deliveries_hanging_during_outage"],
}
# Options a script's full run takes that its quick run must still exercise.
EXTRA = {"throughput": ["--upserts"]}


def _result(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, "no RESULT line"
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_the_benchmark_runs_quick_and_prints_its_numbers(script: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", f"bench.{script}", "--quick", *EXTRA.get(script, [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a loaded CI machine; --quick itself aims at a minute
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    result = _result(finished.stdout)
    assert result["bench"] == script and result["quick"] is True
    assert "load_average" in result["machine"]  # type: ignore[operator]
    for expected in EXPECTED[script]:
        assert any(key == expected or key.endswith(expected) for key in result), (expected, sorted(result))
    if script == "throughput":  # the second baseline really upserts, and the first does not
        assert result["upserting_baseline_history"]["search_attribute_upserts"] > 0  # type: ignore[index]
        assert result["baseline_history"]["search_attribute_upserts"] == 0  # type: ignore[index]
