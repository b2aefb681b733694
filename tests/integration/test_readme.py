"""The README's walk-through, copied from the README and run as written against `course dev`.

It cannot rot: times in it are relative to now (`--in`, `--ago`, `--at now`), every file it uses is
inline, and it runs in a second shell that reaches the stack the way the README says (the
`DATABASE_URL` line `course dev` printed; the test's free ports stand in for the defaults).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_dev_stack import DevStack, _processes_of

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def walk_through() -> str:
    """The first bash block under the walk-through's heading, exactly as the README has it."""
    text = README.read_text()
    section = text[text.index("## Walk-through") :]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, "the README's walk-through has no bash block"
    return found.group(1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path / "course-data")
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.stop()
    for pid in _processes_of(tmp_path / "course-data"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _shell_with_course(tmp_path: Path) -> Path:
    """A folder with `course` on it, as `. .venv/bin/activate` gives a shell."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    course = bin_dir / "course"
    course.write_text(f'#!/bin/sh\nexec {sys.executable} -c "from cli.main import main; main()" "$@"\n')
    course.chmod(0o755)
    return bin_dir


def test_the_readme_walk_through_runs_as_written(stack: DevStack, tmp_path: Path) -> None:
    script = walk_through()
    assert "2026-" not in script.replace('"form_version": "2026-01"', ""), "a fixed date would rot"
    stack.start()
    assert stack.database_url, "course dev did not print the DATABASE_URL line the README points to"
    env = {
        **stack.env,
        "PATH": f"{_shell_with_course(tmp_path)}:{os.environ['PATH']}",
        "DATABASE_URL": stack.database_url,  # from another folder, as the README says
        "PYTHONPATH": str(README.parent),
    }
    # `C` is the course the walk-through opened; printed after it so the test can look at it.
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script + '\necho "walk-through course: $C"\n'],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, f"the walk-through failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    course = re.search(r"walk-through course: (\S+)", ran.stdout)
    assert course, ran.stdout
    assert "ops-dunn (operations)" in ran.stdout, ran.stdout  # `course whoami`

    # What the walk-through promises happened: a dose and an integration session, as their authors.
    token = stack.staff("dr-check", "operations")
    audit = stack.course("audit", course.group(1), "--json", token=token)
    assert audit.returncode == 0, audit.stderr
    changes = [(c["type"], c["staff_id"]) for c in json.loads(audit.stdout)["changes"]]
    for expected in [
        ("AssessmentRecorded", "dr-ames"),
        ("ConsentRecorded", "rn-bell"),
        ("SessionScheduled", "ops-dunn"),
        ("CheckedIn", "rn-bell"),
        ("DosingSessionCompleted", "rn-bell"),
        ("IntegrationSessionRecorded", "th-cole"),
    ]:
        assert expected in changes, (expected, changes)
    assert not Path(env.get("XDG_CONFIG_HOME", ""), "course", "token").exists()  # `course logout` ran
