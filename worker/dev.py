"""`course dev`: the whole service on one machine, started and stopped by one command.

Temporal dev server + UI (SQLite under the data folder, WAL, search attributes registered),
PostgreSQL (embedded unless DATABASE_URL is set), migrations and the worker. Ctrl-C stops all;
a hard kill stops the children too (they end with their parent), and one `course dev` at a time
holds the data folder (worker/dev_lock.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from temporalio.service import RPCError

from api import server as api_server
from api.server import api_url
from worker import codec_server, dev_lock, dev_postgres
from worker.binaries import temporal_cli
from worker.child_process import die_with_parent, is_running, stop_leftover
from worker.main import connect, run_worker
from worker.schedules import describe, ensure_schedules
from worker.settings import Settings
from workflows.search_attributes import cli_definitions

log = structlog.get_logger(__name__)

# WAL lets readers and the writer overlap (about 3x the default journal here). synchronous=NORMAL
# keeps WAL's crash safety for the database file (a power cut may lose the last transactions,
# never corrupt the file); OFF would be faster still but can corrupt it, so the dev stack, which
# keeps courses across restarts, does not use it.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL")
# Dynamic config the service's servers run with, here and in the compose stack
# (deploy/temporal/dynamicconfig/docker.yaml; tests/test_compose.py keeps the two equal).
# Eager activities: the server hands an activity back to the worker that scheduled it with its
# answer to the workflow task, instead of queueing it for a poll. The CLI's dev server already
# does this unasked (its `activity_eager_execution` metric counted 195 of 200 activities with no
# flag), so every test and benchmark ran with it; saying so here makes the compose server, whose
# default depends on the server's version, run activities the way they were tested. No
# throughput difference was measured (bench/FINDINGS.md): this is about running as tested.
SERVER_DYNAMIC_CONFIG = {"system.enableActivityEagerExecution": True}
SCHEDULE_ATTEMPTS = 60  # half a second apart


def server_args() -> list[str]:
    """The dev server's SQLite pragmas and dynamic config, as `temporal server start-dev` takes them
    (also what the tests start their dev servers with)."""
    args: list[str] = []
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for key, value in SERVER_DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return args


def dev_server_command(settings: Settings, data_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        host or "127.0.0.1",
        "--port",
        port or "7233",
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--namespace",
        settings.temporal_namespace,
        "--ui-disable-news-fetch",
        "--ui-codec-endpoint",
        codec_server.ui_codec_endpoint(settings),
    ]
    command += server_args()
    for name, kind in cli_definitions():
        command += ["--search-attribute", f"{name}={kind}"]
    return command + list(extra)


def wait_for_server(server: subprocess.Popen[bytes], host: str, port: int, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"the Temporal dev server exited ({server.returncode}); its log ({log}) ends:\n" + "\n".join(tail)
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def local_settings(settings: Settings) -> Settings:
    """What `course dev` changes for a stack on this machine, unless set explicitly: the Temporal UI
    it starts is the codec server's origin, and the console is served over http://localhost, so
    its cookie goes without `Secure` (the default everywhere else)."""
    changes: dict[str, object] = {}
    if "codec_cors_origin" not in settings.model_fields_set:
        changes["codec_cors_origin"] = f"http://localhost:{settings.temporal_ui_port}"
    if "api_secure_cookies" not in settings.model_fields_set:
        changes["api_secure_cookies"] = False
    return settings.model_copy(update=changes)


def run_dev(settings: Settings) -> int:
    settings = local_settings(settings)
    data_dir = settings.course_data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = dev_lock.acquire(data_dir)
    except dev_lock.DataFolderInUse as refused:
        print(f"error: {refused}", file=sys.stderr, flush=True)
        return 1
    try:
        _stop_leftovers(data_dir, lock.previous_children)
        return _run_stack(settings, data_dir, lock)
    finally:
        lock.release()


def _is_dev_server_of(data_dir: Path) -> Callable[[Sequence[str]], bool]:
    def looks_like(argv: Sequence[str]) -> bool:
        return "start-dev" in argv and str(data_dir / "temporal.db") in argv

    return looks_like


def _stop_leftovers(data_dir: Path, recorded: dict[str, int]) -> None:
    """Stop what a `course dev` on this folder left running when it was killed without cleaning up.

    Its children were told to end when it died (PDEATHSIG), so usually they are gone or going; this
    waits for them, and stops any that did not hear (another OS, a kill between fork and prctl).
    """
    temporal = recorded.get("temporal")
    if temporal is not None and is_running(temporal, _is_dev_server_of(data_dir)):
        print(f"Stopping the Temporal dev server (pid {temporal}) an earlier course dev left running.", flush=True)
        if not stop_leftover(temporal, _is_dev_server_of(data_dir), (signal.SIGTERM, signal.SIGKILL)):
            raise RuntimeError(
                f"the Temporal dev server (pid {temporal}) an earlier course dev started is still running: "
                f"stop it (`kill {temporal}`, or `kill -9 {temporal}`) and start course dev again"
            )
    pgdata = dev_postgres.pgdata_of(data_dir)
    postmaster = dev_postgres.running_postmaster(pgdata)
    if postmaster is not None:
        print(f"Stopping PostgreSQL (pid {postmaster}) left running on {pgdata}.", flush=True)
    dev_postgres.stop_leftover_postmaster(pgdata, recorded.get("postgres"))


def _run_stack(settings: Settings, data_dir: Path, lock: dev_lock.DevStackLock) -> int:
    host, _, port = settings.temporal_address.rpartition(":")
    log_path = data_dir / "temporal-server.log"
    server_log = log_path.open("ab")
    server = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
        dev_server_command(settings, data_dir),
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us alone, and we stop the children in order
        preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - main thread, before any other starts
    )
    lock.record("temporal", server.pid)
    pg_server: dev_postgres.EmbeddedPostgres | None = None
    try:
        wait_for_server(server, host or "127.0.0.1", int(port or 7233), log_path)
        if settings.database_url:
            dsn = settings.database_url
        else:
            pg_server = dev_postgres.start(data_dir, on_started=lambda pid: lock.record("postgres", pid))
            dsn = pg_server.dsn
        where = f"embedded in {data_dir / 'postgres'}" if pg_server else "from DATABASE_URL"
        print(f"Temporal UI:      http://localhost:{settings.temporal_ui_port}", flush=True)
        print(f"Temporal server:  {settings.temporal_address} (namespace {settings.temporal_namespace})")
        print(f"PostgreSQL:       {where}")
        print(f"  export DATABASE_URL='{dsn}'  # for `course events` from another shell")
        token_file = codec_server.dev_token_file(settings)
        print(
            f"Codec server:     {codec_server.ui_codec_endpoint(settings)} (staff sign in at /login"
            + (f"; development token in {token_file})" if token_file else ")")
        )
        print(
            f"API + console:    {api_url(settings)}/console (OpenAPI at /docs; tokens: `course staff add`)", flush=True
        )
        asyncio.run(_serve(settings, dsn))
        return 0
    except KeyboardInterrupt:  # Ctrl-C before the worker took over the signal: a normal stop
        return 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
        lock.forget("temporal")
        if pg_server is not None:
            pg_server.stop()
            lock.forget("postgres")
        print("Stopped Temporal dev server" + (" and PostgreSQL." if pg_server else "."), flush=True)


async def _schedules(settings: Settings) -> None:
    """The clinic's Schedules (worker/schedules.py), created or brought up to date: idempotent.

    The dev server listens a moment before it serves every call, so a refusal is retried for a
    while; a stack whose Schedules cannot be made still serves courses, and says so."""
    client = await connect(settings)
    for attempt in range(SCHEDULE_ATTEMPTS):
        try:
            outcomes = await ensure_schedules(client, settings)
            break
        except RPCError as error:
            if attempt == SCHEDULE_ATTEMPTS - 1:
                print(f"warning: the clinic's schedules were not created ({error.status}): {error.message}")
                return
            await asyncio.sleep(0.5)
    changed = ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items())
    print(f"Schedules:        {describe(settings)} [{changed}]", flush=True)


async def _serve(settings: Settings, dsn: str) -> None:
    """The worker, the codec server and the API, until Ctrl-C.

    The signal handlers come first, before anything connects: a Ctrl-C while the services start is
    kept in `stop`, and each service stops as soon as it is up. (Before, Ctrl-C in that window was a
    cancellation, which a library awaiting with a timeout can swallow: course dev then ran on with
    nothing left to stop it.) A second Ctrl-C stops at once, whatever is still starting.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    serving = asyncio.current_task()
    assert serving is not None

    def on_signal() -> None:
        if stop.is_set():
            print("Stopping now.", flush=True)
            serving.cancel()
            return
        print("Stopping (Ctrl-C again to stop at once)...", flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    worker_running, api_ready = asyncio.Event(), asyncio.Event()

    async def announce() -> None:
        # Only now is the stack usable: the worker polls and the API answers.
        await worker_running.wait()
        await api_ready.wait()
        if not stop.is_set():
            print("Worker running; Ctrl-C stops everything.", flush=True)

    announcing = asyncio.create_task(announce())
    await _schedules(settings)
    try:
        await asyncio.gather(
            run_worker(settings, dsn, stop, running=worker_running),
            codec_server.serve(settings, stop_event=stop),
            api_server.serve(settings, dsn, stop, ready=api_ready),
        )
    except asyncio.CancelledError:
        return  # the second Ctrl-C: the children and PostgreSQL are stopped by our caller
    finally:
        announcing.cancel()
