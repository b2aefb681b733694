"""One `course dev` per data folder, and the record of what it started.

The lock is an flock on `dev.lock` in the data folder: the kernel releases it when the holder dies,
however it dies, so a SIGKILLed run never leaves the folder locked. The same file records the
holder's pid (for the refusal message) and its children's pids (so the next run can find any
that outlived it). The file is never deleted: unlinking a lock file lets two processes lock
different inodes under the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "dev.lock"


class DataFolderInUse(RuntimeError):
    def __init__(self, data_dir: Path, holder: int | None) -> None:
        who = f" (pid {holder})" if holder else ""
        stop = f"Ctrl-C in its terminal (or `kill {holder}`)" if holder else "Ctrl-C in its terminal"
        super().__init__(
            f"course dev is already running on {data_dir}{who}. Use that one, stop it with {stop}, "
            "or start this one on another folder: COURSE_DATA_DIR=<folder> course dev"
        )
        self.holder = holder


class DevStackLock:
    """Held for the whole life of `course dev`; `record` notes each child as it is started."""

    def __init__(self, file: IO[str], previous_children: dict[str, int]) -> None:
        self._file = file
        self._children: dict[str, int] = {}
        self.previous_children = previous_children  # recorded by a run that died without stopping them

    def record_holder(self) -> None:
        self._write()

    def record(self, name: str, pid: int) -> None:
        self._children[name] = pid
        self._write()

    def forget(self, name: str) -> None:
        self._children.pop(name, None)
        self._write()

    def release(self) -> None:
        self._children.clear()
        self._write()
        self._file.close()  # closing the only descriptor releases the flock

    def _write(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), "children": self._children}) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())  # the record must survive the hard kill it exists for


def acquire(data_dir: Path) -> DevStackLock:
    """Lock the data folder for this `course dev`, or raise DataFolderInUse naming the holder."""
    # "a+" creates without truncating: the holder's record must stay readable to the one refused.
    # Python does not let children inherit the descriptor, so a child that outlives us never holds
    # the lock: only the record names it, and the next run stops it.
    file = (data_dir / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = _read(file.read()).get("pid")
        file.close()
        raise DataFolderInUse(data_dir, holder if isinstance(holder, int) else None) from None
    file.seek(0)
    children = _read(file.read()).get("children")
    previous = {str(k): v for k, v in children.items() if isinstance(v, int)} if isinstance(children, dict) else {}
    lock = DevStackLock(file, previous)
    lock.record_holder()  # at once: a run refused from now on names us, not the previous holder
    return lock


def _read(text: str) -> dict[str, object]:
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            return parsed
    return {}
