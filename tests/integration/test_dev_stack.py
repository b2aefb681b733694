"""`course dev` as a person runs it: one command up, courses survive a restart, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

COURSE = [sys.executable, "-c", "from cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_of(data_dir: Path) -> list[int]:
    """Live processes working in the data folder: named in their command line or running inside it.

    PostgreSQL's backends name neither, but every one of them runs with the data folder as its cwd.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone meanwhile, or a zombie
        if argv and (str(data_dir).encode() in argv or cwd.startswith(str(data_dir))):
            found.append(int(entry.name))
    return found


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout:.0f}s: {what}"
        time.sleep(0.2)


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class DevStack:
    def __init__(self, data_dir: Path) -> None:
        self.grpc, self.ui, self.api = _free_port(), _free_port(), _free_port()
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.grpc}",
            "TEMPORAL_UI_PORT": str(self.ui),
            "CODEC_SERVER_PORT": str(_free_port()),
            "API_PORT": str(self.api),
            "COURSE_DATA_DIR": str(data_dir),
            "XDG_CONFIG_HOME": str(data_dir.parent / "config"),  # where `course login` keeps a token
        }
        self.env.pop("DATABASE_URL", None)
        self.env.pop("COURSE_TOKEN", None)  # the default: embedded PostgreSQL under the data folder
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.database_url = ""

    def start(self, timeout: float = 120, until: str = "Worker running") -> None:
        self.process = subprocess.Popen(
            [*COURSE, "dev"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError("course dev exited early:\n" + "".join(self.output))
            self.output.append(line)
            found = re.search(r"export DATABASE_URL='([^']+)'", line)
            if found:
                self.database_url = found.group(1)
            if until in line:
                return
        raise AssertionError("course dev did not come up:\n" + "".join(self.output))

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        # Bounded, not guessed: course dev stops the worker (10 s grace), the Temporal server
        # (15 s) and PostgreSQL (30 s fast shutdown, then 10 s immediate) in turn; on a loaded
        # machine, a PostgreSQL restarted after a SIGKILL can use most of its share checkpointing.
        try:
            out, _ = self.process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
            said = "".join([*self.output, out])[-2000:]
            raise AssertionError(f"course dev did not stop within 180 s of Ctrl-C:\n{said}") from None
        self.output.append(out)
        return self.process.returncode

    def course(
        self, *args: str, attach: bool = False, token: str | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a second shell would; `attach`: without DATABASE_URL, finding the data folder's
        server; `token`: as that staff member (COURSE_TOKEN)."""
        env = {**self.env, "DATABASE_URL": "" if attach else self.database_url}
        if token:
            env["COURSE_TOKEN"] = token
        return subprocess.run(
            [*COURSE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    def staff(self, staff_id: str, role: str) -> str:
        """`course staff add`: the member's new token."""
        added = self.course("staff", "add", staff_id, "--role", role, "--json")
        assert added.returncode == 0, added.stderr
        return str(json.loads(added.stdout)["token"])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path / "course-data")
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.process.kill()
    # Whatever a test left (it failed, or it stopped a child on purpose) must not outlive it.
    for pid in _processes_of(tmp_path / "course-data"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_course_dev_runs_everything_and_keeps_courses_across_a_restart(stack: DevStack, tmp_path: Path) -> None:
    stack.start()
    assert f"http://localhost:{stack.ui}" in "".join(stack.output)
    assert _listening(stack.ui), "the Temporal UI is not served"
    # Staff commands act as the token's owner, through the API `course dev` serves.
    assert f"http://localhost:{stack.api}/console" in "".join(stack.output)
    ops, token = stack.staff("ops-1", "operations"), stack.staff("dr-1", "prescriber")
    opened = stack.course(
        "open", "--patient", "pt-dev-1", "--clinician", "dr-1", "--self-pay", "--json", token=ops
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    course = json.loads(opened.stdout)["course_id"]
    assert stack.course("status", course, token=ops).returncode == 0
    # `course login` keeps dr-1's token (0600); a second shell without DATABASE_URL attaches to the
    # embedded PostgreSQL; Ctrl-C still stops it.
    login = stack.course("login", "--token-stdin", stdin=token + "\n")
    assert login.returncode == 0 and "signed in as dr-1 (prescriber)" in login.stdout, login.stderr
    attached = stack.course("events", course, attach=True)
    assert attached.returncode == 0, attached.stderr

    # The API and console serve the same token (its prescriber's: a course in assessment is its care
    # team's to read).
    seen = httpx.get(f"http://localhost:{stack.api}/courses/{course}", headers={"Authorization": f"Bearer {token}"})
    assert seen.status_code == 200 and seen.json()["course_id"] == course

    assert stack.stop() == 0
    assert not _listening(stack.grpc), "the Temporal dev server outlived Ctrl-C"
    assert not _listening(stack.api), "the API outlived Ctrl-C"
    assert not (tmp_path / "course-data" / "postgres" / "postmaster.pid").exists(), "PostgreSQL still running"
    assert _processes_of(tmp_path / "course-data") == [], "a process of the data folder outlived Ctrl-C"

    stack.start()
    status = stack.course("status", course, "--json", token=ops)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["course_id"] == course
    events = stack.course("events", course, "--json")  # as dr-1, from the file `course login` wrote
    assert events.returncode == 0, events.stderr
    assert [e["type"] for e in json.loads(events.stdout)][:2] == ["CourseOpened", "EligibilityChecked"]
    assert stack.stop() == 0


def test_a_hard_killed_course_dev_takes_its_children_with_it(stack: DevStack, tmp_path: Path) -> None:
    data_dir = tmp_path / "course-data"
    stack.start()
    assert stack.process is not None
    assert len(_processes_of(data_dir)) >= 2, "expected the Temporal dev server and PostgreSQL"

    stack.process.kill()  # SIGKILL, as a closed terminal or the OOM killer would: no cleanup runs
    stack.process.wait()

    _until(lambda: _processes_of(data_dir) == [], "a process of the data folder outlived a SIGKILLed course dev")
    assert not _listening(stack.grpc), "the Temporal dev server outlived course dev"
    stack.start()  # the same folder starts again, with the courses it had
    assert stack.stop() == 0


def test_a_new_course_dev_stops_what_a_killed_one_left_running(stack: DevStack, tmp_path: Path) -> None:
    data_dir = tmp_path / "course-data"
    stack.start()
    assert stack.process is not None
    record = json.loads((data_dir / "dev.lock").read_text())
    assert record["pid"] == stack.process.pid
    temporal, postgres = record["children"]["temporal"], record["children"]["postgres"]
    assert _postmaster(data_dir) == postgres
    # Stopped children cannot act on the signal their parent's death sends them: they stay behind,
    # as they would where that signal does not exist.
    for pid in (temporal, postgres):
        os.kill(pid, signal.SIGSTOP)
    stack.process.kill()
    stack.process.wait()
    assert temporal in _processes_of(data_dir) and postgres in _processes_of(data_dir)

    stack.start()
    said = "".join(stack.output)
    assert f"Stopping the Temporal dev server (pid {temporal})" in said
    assert f"Stopping PostgreSQL (pid {postgres})" in said
    assert temporal not in _processes_of(data_dir) and postgres not in _processes_of(data_dir)
    assert stack.stop() == 0
    _until(lambda: _processes_of(data_dir) == [], "a process of the data folder outlived Ctrl-C")


def test_a_second_course_dev_on_the_same_folder_refuses_and_says_what_to_do(stack: DevStack, tmp_path: Path) -> None:
    stack.start()
    assert stack.process is not None
    second = DevStack(tmp_path / "course-data")  # its own ports: only the folder is shared
    refused = subprocess.run([*COURSE, "dev"], env=second.env, capture_output=True, text=True, timeout=60, check=False)

    assert refused.returncode != 0
    assert f"course dev is already running on {tmp_path / 'course-data'} (pid {stack.process.pid})" in refused.stderr
    assert "Ctrl-C" in refused.stderr and "COURSE_DATA_DIR=" in refused.stderr
    assert not _listening(second.grpc), "the refused course dev started a Temporal server"
    assert _listening(stack.grpc) and stack.course("staff", "list").returncode == 0, "the running one was disturbed"
    assert stack.stop() == 0


def test_ctrl_c_while_the_services_start_is_kept_and_stops_everything(stack: DevStack, tmp_path: Path) -> None:
    """Ctrl-C in the seconds between the banner and a running worker (connecting, migrating).

    It used to reach the services as a cancellation, which a library awaiting with a timeout can
    swallow: course dev then ran on, "Worker running", with nothing left to stop it.
    """
    # The codec server is up first; the worker is still connecting and migrating.
    stack.start(until="codec server listening")
    assert stack.stop() == 0
    said = "".join(stack.output)
    assert "Stopping (Ctrl-C again to stop at once)" in said
    assert "Worker running" not in said, "the stack announced itself after it was asked to stop"
    _until(lambda: _processes_of(tmp_path / "course-data") == [], "a process of the data folder outlived Ctrl-C")
    assert not _listening(stack.api) and not _listening(stack.grpc)


def test_course_dev_creates_the_clinics_schedules_once_and_course_reconcile_runs_one(
    stack: DevStack, tmp_path: Path
) -> None:
    stack.start()
    said = "".join(stack.output)
    assert "[clinic-daily-huddle created, clinic-reconcile created]" in said, said
    nothing_yet = stack.course("reconcile", "--last")
    assert nothing_yet.returncode == 1 and "no reconciliation has run yet" in nothing_yet.stderr
    # `course reconcile` triggers the Schedule, as the UI's Trigger button does.
    triggered = stack.course("reconcile")
    assert triggered.returncode == 0, triggered.stderr

    def listed() -> bool:
        return stack.course("reconcile", "--last", "--json").returncode == 0

    _until(listed, "the triggered reconciliation's run stored")
    last = json.loads(stack.course("reconcile", "--last", "--json").stdout)
    assert last["run_id"].startswith("clinic-reconcile-") and last["findings"] == []
    assert stack.stop() == 0

    stack.start()
    said = "".join(stack.output)
    assert "[clinic-daily-huddle unchanged, clinic-reconcile unchanged]" in said, said
    assert stack.stop() == 0
