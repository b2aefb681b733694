"""What every benchmark shares: the machine it ran on, a Temporal dev server on SQLite like
`course dev`, a throwaway PostgreSQL database, percentiles, and a clean exit.

Each script prints its numbers as `name: value` lines while it runs, then one line
`RESULT {json}` with everything (tests/test_bench_quick.py reads that line; RESULTS.md quotes it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import temporalio
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker.binaries import temporal_cli
from worker.codec import new_key_entry
from worker.converter import data_converter
from worker.database import migrate
from worker.main import workflow_runner
from worker.settings import Settings
from workflows import search_attributes
from workflows.treatment_course import TreatmentCourseWorkflow

# `course dev` runs SQLite in WAL mode with synchronous=NORMAL (README: OFF risks a corrupt file on a
# power cut). The benchmarks measure that same stack by default; --sqlite-synchronous OFF gives the
# setting Temporal's own throughput tests use, for comparison.
DEFAULT_SYNCHRONOUS = "NORMAL"
# Above this one-minute load average the machine is busy with something else: numbers are noise.
QUIET_LOAD = 1.5


# --- the machine --------------------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def memory_total_mib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def source_revision() -> str:
    """The commit measured, and whether the work tree differed from it (read-only git);
    BENCH_SOURCE names it when the tree is a copy without .git."""
    if os.environ.get("BENCH_SOURCE"):
        return os.environ["BENCH_SOURCE"]
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + local changes" if changed else "")


def machine() -> dict[str, Any]:
    return {
        "source": source_revision(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_mib": memory_total_mib(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
    }


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (default: this one), from /proc."""
    with open(f"/proc/{pid or os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process (the worker and the drivers), the
    Temporal dev server and PostgreSQL (every backend of the machine's server), from /proc. The
    difference over a run, divided by its courses, is what one course costs each of them."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"worker": 0.0, "temporal": 0.0, "postgres": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                line = stat.read()
        except OSError:  # gone since the listing
            continue
        command, fields = line[line.index("(") + 1 : line.rindex(")")], line[line.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(entry) == os.getpid():
            used["worker"] += seconds
        elif command.startswith("temporal"):
            used["temporal"] += seconds
        elif command.startswith("postgres"):
            used["postgres"] += seconds
    return used


def cpu_ms_per(count: int, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round((after[name] - before[name]) * 1000 / count, 1) for name in before}


# --- reporting ----------------------------------------------------------------------------------


def _module() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


class Report:
    """Prints each number as it is measured and keeps it for the final RESULT line."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.values: dict[str, Any] = {
            "bench": name,
            "quick": bool(getattr(args, "quick", False)),
            "command": " ".join(["python -m", _module(), *sys.argv[1:]]),
            "machine": machine(),
        }
        self._started = time.monotonic()
        load = self.values["machine"]["load_average"]
        print(f"== {name} ({'quick' if self.values['quick'] else 'full'}) {self.values['machine']}", flush=True)
        if load[0] > QUIET_LOAD:
            print(f"warning: load average {load[0]} > {QUIET_LOAD} at the start: the machine is busy", flush=True)

    def add(self, key: str, value: Any, note: str = "") -> Any:
        self.values[key] = value
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key}: {shown}" + (f"   ({note})" if note else ""), flush=True)
        return value

    def target(self, key: str, target: str) -> None:
        """A number's target, as `<= N` or `>= N`, for RESULTS.md's summary (`python -m bench render`)."""
        self.values.setdefault("targets", {})[key] = target

    def ratio(self, key: str, measured: float, baseline: float, target: str | None = None) -> float:
        value = measured / baseline if baseline else float("nan")
        self.values[key] = round(value, 3)
        if target:
            self.values.setdefault("targets", {})[key] = target
        print(f"{key}: {value:.3f}   ({f'target {target}' if target else 'no target'})", flush=True)
        return value

    def finish(self) -> None:
        self.values["load_average_end"] = load_average()
        self.values["seconds"] = round(time.monotonic() - self._started, 1)
        print(f"load average at the end: {self.values['load_average_end']}; {self.values['seconds']} s", flush=True)
        print("RESULT " + json.dumps(self.values, default=str), flush=True)


def percentiles(samples: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles, in milliseconds when `samples` are seconds."""
    ordered = sorted(samples)
    if not ordered:
        return {f"p{p}": float("nan") for p in points}
    out = {}
    for p in points:
        rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n)
        out[f"p{p}"] = round(ordered[rank - 1] * 1000, 2)
    return out


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else float("nan")


# --- the stack ----------------------------------------------------------------------------------


def bench_settings() -> Settings:
    """Settings with a throwaway payload key: encrypted like production, no keyring file written.
    The key is kept in the environment so a worker started as a child process shares it."""
    keys = os.environ.setdefault("BENCH_PAYLOAD_KEYS", new_key_entry("bench"))
    return Settings(payload_keys=SecretStr(keys), payload_key_id="bench")


def sqlite_args(synchronous: str) -> list[str]:
    return ["--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", f"synchronous={synchronous}"]


@contextlib.asynccontextmanager
async def temporal_dev_server(
    workdir: Path, synchronous: str = DEFAULT_SYNCHRONOUS, extra_args: Sequence[str] = ()
) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI dev server on a SQLite file in WAL mode, search attributes registered."""
    os.makedirs(workdir, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(bench_settings()),
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(workdir / "temporal.db"),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=[*sqlite_args(synchronous), *extra_args],
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),  # a loaded 2-core machine can be slow
    )
    async with env:
        yield env


def _local_postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def postgres_server_url() -> str:
    """TEST_DATABASE_URL, else the machine's PostgreSQL on 127.0.0.1:5432, else an embedded one."""
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    if _local_postgres_up():
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    from worker.database import embedded_postgres_url  # noqa: PLC0415 - only without a server

    return embedded_postgres_url(Path(tempfile.mkdtemp(prefix="course-bench-pg-")))


def with_database(url: str, name: str) -> str:
    head, _, tail = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")


@contextlib.asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A fresh, migrated database; dropped at the end however the benchmark ends."""
    server = postgres_server_url()
    name = f"course_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = with_database(server, name)
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def postgres_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def task_queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def course_worker(
    client: Client,
    queue: str,
    activities: Sequence[Any],
    *,
    workflows: Sequence[type] = (TreatmentCourseWorkflow,),
    max_cached_workflows: int = 1000,
) -> Worker:
    """A worker configured like worker.main.build_worker, with the cache size and workflow list a
    benchmark needs (build_worker takes neither). Keep the two in step."""
    return Worker(
        client,
        task_queue=queue,
        workflows=list(workflows),
        activities=list(activities),
        graceful_shutdown_timeout=timedelta(seconds=10),
        activity_executor=ThreadPoolExecutor(max_workers=4),
        max_cached_workflows=max_cached_workflows,
        # The service's runner: the sandbox for every workflow; courses answer their payloads'
        # contexts outside it (worker/runner.py). The baselines run in the sandbox as they are.
        workflow_runner=workflow_runner(),
    )


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when it is not on PATH
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def _written(path: str) -> bool:
    return Path(path).is_file() and Path(path).stat().st_size > 0


@contextlib.asynccontextmanager
async def profiled(path: str | None) -> AsyncIterator[None]:
    """Sample this process with py-spy while the block runs and write a speedscope profile to
    `path` (nothing when `path` is None). py-spy is not a dependency of the service: without it
    the block runs unprofiled and says so. It samples from outside the interpreter (50 Hz, without
    pausing the process), so the measured numbers move little, but they are not the unprofiled run's."""
    if not path:
        yield
        return
    spy = _py_spy()
    if spy is None:
        print("profile: skipped, py-spy is not installed (pip install py-spy)", flush=True)
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    args = [spy, "record", "--pid", str(os.getpid()), "--rate", "50", "--nonblocking"]
    process = await asyncio.create_subprocess_exec(
        *args,
        "--format",
        "speedscope",
        "--output",
        path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        _, err = await process.communicate()
        written = _written(path)
        print(f"profile: {path if written else 'not written: ' + err.decode(errors='replace')[-300:]}", flush=True)


class RpcCounter:
    """The workflow-service calls (by name) a client makes while counting: the round trips a
    caller pays. Wraps the client's service client, so count only where nothing else uses it."""

    def __init__(self, client: Client) -> None:
        self.calls: list[str] = []
        self._counting = False
        service = client.service_client
        original = service._rpc_call

        async def counted(rpc: str, *args: Any, **kwargs: Any) -> Any:
            if self._counting:
                self.calls.append(rpc)
            return await original(rpc, *args, **kwargs)

        service._rpc_call = counted  # type: ignore[method-assign]

    @contextlib.contextmanager
    def counting(self) -> Any:
        self.calls.clear()
        self._counting = True
        try:
            yield self.calls
        finally:
            self._counting = False


# --- running a script ---------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(description=description)
    parsed.add_argument("--quick", action="store_true", help="small sizes, under a minute (CI)")
    parsed.add_argument(
        "--sqlite-synchronous",
        default=DEFAULT_SYNCHRONOUS,
        choices=["NORMAL", "OFF"],
        help="the dev server's SQLite synchronous pragma (journal_mode is always WAL)",
    )
    return parsed


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: argparse.Namespace) -> NoReturn:
    """Run a benchmark and leave with os._exit: temporalio issue #300, the interpreter can crash at
    exit after a worker ran, which would turn a finished benchmark into a failed one."""
    code = 0
    try:
        asyncio.run(main(args))
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - report anything, then leave with a failing status
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- histories ----------------------------------------------------------------------------------

_SHAPE_KINDS = {
    "updates": "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    "activities": "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
    "timers_started": "EVENT_TYPE_TIMER_STARTED",
    "timers_fired": "EVENT_TYPE_TIMER_FIRED",
    "timers_canceled": "EVENT_TYPE_TIMER_CANCELED",
    "workflow_tasks": "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    "search_attribute_upserts": "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
}


async def history_shape(client: Client, workflow_id: str, run_id: str | None = None) -> dict[str, int]:
    """How many history events one run has, in all and of the kinds that make a course's shape."""
    from temporalio.api.enums.v1 import EventType  # noqa: PLC0415

    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    names = [EventType.Name(event.event_type) for event in history.events]
    shape = {"events": len(names)}
    for key, name in _SHAPE_KINDS.items():
        shape[key] = names.count(name)
    shape["local_activities"] = sum(
        event.marker_recorded_event_attributes.marker_name == "core_local_activity" for event in history.events
    )
    shape["bytes"] = sum(event.ByteSize() for event in history.events)
    return shape
