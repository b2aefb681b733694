"""Children that end with their parent, and telling a leftover child from an unrelated process.

`course dev` runs the Temporal dev server and PostgreSQL as children. Killed hard (SIGKILL, a closed
terminal) it runs no cleanup, so the children are told by the kernel instead (Linux PDEATHSIG), and
the pids it recorded let the next run find whatever still survived.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PROC = Path("/proc")


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send `sig` to the child when this process dies (Linux only).

    Popen must be called from the main thread: PDEATHSIG fires when the parent *thread* that forked
    the child ends, and only the main thread lives as long as `course dev`. It runs after Popen's
    `user=` switch, which would otherwise clear it.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl: then nobody would ever send the signal.
        if os.getppid() != parent:
            raise ChildProcessError("the parent died before its child started")

    return set_parent_death_signal


def can_verify() -> bool:
    """Whether a pid's program can be read (Linux's /proc); elsewhere a live pid may be anybody."""
    return _PROC.is_dir()


def command_line(pid: int) -> list[str] | None:
    """The process's argv, or None when it is gone (a zombie's is empty: gone as well)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0") if raw else None


def is_running(pid: int, looks_like: Callable[[Sequence[str]], bool]) -> bool:
    """Whether `pid` is alive *and* is the program we recorded, not a stranger that reused the pid.

    Where that cannot be read, any live pid counts: a file it holds must not be taken for stale.
    """
    if not can_verify():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    argv = command_line(pid)
    return argv is not None and looks_like(argv)


def stop_leftover(
    pid: int,
    looks_like: Callable[[Sequence[str]], bool],
    signals: Sequence[signal.Signals],
    grace: float = 15.0,
) -> bool:
    """Send each signal in turn to a recorded process that is not our child until it is gone.

    Returns whether it is gone. Each signal is sent only after re-checking that the pid is still the
    program we recorded; where that cannot be checked nothing is sent, and the caller says what to do.
    """
    if not can_verify():
        return not is_running(pid, looks_like)
    for sig in signals:
        if not is_running(pid, looks_like):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            os.kill(pid, signal.SIGCONT)  # a stopped process (Ctrl-Z, a debugger) acts on it only when continued
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not is_running(pid, looks_like):
                return True
            time.sleep(0.1)
    return not is_running(pid, looks_like)
