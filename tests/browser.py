"""Headless Chromium for tests that look at a page as a person would, with no new dependency.

The Debian `chromium` package, driven over the DevTools protocol through a pipe
(`--remote-debugging-pipe`: commands on the child's fd 3, answers on its fd 4, each message JSON
ended by a NUL byte), so no websocket client and no debugging port are needed. Every wait is
bounded. Nothing here ever downloads a browser: without `chromium` on PATH, `find_chromium`
returns None and the caller decides to skip or fail.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

# Quiet, offline, reproducible: no first-run UI, no background fetches, no component updates.
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI; the page is our own localhost UI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


_VISIBLE_TEXT = """(() => {
  const parts = [document.body ? document.body.innerText : ""];
  for (const frame of document.querySelectorAll("iframe")) {
    try {
      const body = frame.contentDocument && frame.contentDocument.body;
      if (body) parts.push(body.innerText);
    } catch (e) { /* another origin: not ours to read */ }
  }
  return parts.join("\\n");
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _above_ten(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class BrowserError(AssertionError):
    pass


class Browser:
    """One headless Chromium, one tab. Use as a context manager; `close()` ends the process."""

    def __init__(self, executable: str, width: int = 1400, height: int = 900) -> None:
        self._profile = tempfile.mkdtemp(prefix="course-chromium-")
        self._log = Path(self._profile) / "chromium.log"
        log = self._log.open("wb")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The child's ends go above 10 first, so moving them to 3 and 4 cannot clobber each other.
        to_child_r, from_child_w = _above_ten(to_child_r), _above_ten(from_child_w)
        # The shell moves our pipe ends to fds 3 and 4, where Chromium expects them, then execs it.
        script = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.process = subprocess.Popen(
            [
                "/bin/bash",  # dash redirects only fds 0-9
                "-c",
                script,
                executable,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        self.console: list[str] = []
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"}, timeout=30)["targetId"]
            self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.close()
            raise

    # -- protocol -------------------------------------------------------------------------------
    def _write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._to_child, data)
            data = data[written:]

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError(
                    f"Chromium closed the DevTools pipe (exit {self.process.poll()}):\n{self.log_tail()}"
                )
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 15) -> dict[str, Any]:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session:
            request["sessionId"] = self._session
        self._write(request)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Runtime.exceptionThrown":
            details = message["params"]["exceptionDetails"]
            self.console.append(
                f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}"
            )
        elif message.get("method") == "Runtime.consoleAPICalled" and message["params"].get("type") == "error":
            args = message["params"].get("args", [])
            self.console.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in args))

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 15) -> dict[str, Any]:
        return self._call(method, params, timeout)

    # -- what a test needs ------------------------------------------------------------------------
    def goto(self, url: str) -> None:
        """Start loading `url`; does not wait for the network (the Temporal UI long-polls)."""
        result = self.send("Page.navigate", {"url": url}, timeout=30)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        """What a person can read on the page: the rendered text, same-origin frames included
        (the Temporal UI renders markdown, such as a workflow's summary, in iframes)."""
        return str(self.evaluate(_VISIBLE_TEXT) or "")

    def click(self, selector: str, timeout: float = 20) -> None:
        """Click the first element matching `selector` once it exists."""
        deadline = time.monotonic() + timeout
        script = (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (e) e.click(); return !!e; }})()"
        )
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                if self.evaluate(script):
                    return
            time.sleep(0.25)
        raise BrowserError(f"no element {selector!r} after {timeout:.0f}s; the page showed:\n{self.text()[:3000]}")

    def html(self) -> str:
        return str(self.evaluate("document.documentElement ? document.documentElement.outerHTML : ''") or "")

    def wait_for_text(self, check: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        """Poll the rendered text until `check` holds; on timeout, fail with what the page showed."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):  # mid-navigation the context can vanish
                seen = self.text()
                if check(seen):
                    return seen
            time.sleep(0.25)
        raise BrowserError(f"timed out after {timeout:.0f}s waiting for {what}; the page showed:\n{seen[:3000]}")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """The viewport, or with `full_page` the whole page (a long form, top to bottom)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", params, timeout=30)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self._session = ""
                self._write({"id": 0, "method": "Browser.close", "params": {}})
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                self.process.wait(timeout=5)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def chromium_or_skip() -> str:
    """Chromium's path; without it, skip on a developer's machine and fail in CI (CI=true)."""
    import pytest  # here, not at the top: the module is also used outside pytest

    found = find_chromium()
    if found is None:
        reason = "headless Chromium not installed (apt-get install chromium): the browser check did not run"
        if os.environ.get("CI"):
            pytest.fail(reason + " -- CI must install it (.ci/run)")
        pytest.skip(reason)
    return found


def artifacts_dir(name: str) -> Path:
    """Where a test keeps what a person may want to look at (screenshots): $TEST_ARTIFACTS, else
    $ARTIFACTS_DIR (the older name, still honoured for CI), else test-artifacts/ in the repository."""
    given = os.environ.get("TEST_ARTIFACTS") or os.environ.get("ARTIFACTS_DIR")
    root = Path(given) if given else Path(__file__).resolve().parent.parent / "test-artifacts"
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fill(browser: Browser, selector: str, value: str) -> None:
    """Type into a form field as a person would (the value set, then the input event)."""
    script = (
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; "
        f"e.value = {json.dumps(value)}; e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()"
    )
    if not browser.evaluate(script):
        raise BrowserError(f"no field {selector!r}; the page showed:\n{browser.text()[:2000]}")
