"""Headless Chromium driven over its DevTools pipe, for screenshots of a web app in a set state.

``tests/browser.py`` drives Chromium from its command line, which cannot set a page's
``localStorage`` before the page loads nor wait for a layout to settle. kedro-viz keeps its UI
settings there (first-visit hints, minimap), and animates its zoom-to-fit; so ``Page`` speaks the
Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, messages
ending in NUL): no WebDriver, no websocket library, no browser download.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.browser import HEADLESS_FLAGS


class DevToolsError(RuntimeError):
    pass


class Page:
    """One browser tab: ``open`` a URL with preset ``localStorage``, ``evaluate`` JavaScript,
    ``wait_until_still``, ``screenshot``. Use as a context manager (the browser is closed)."""

    def __init__(self, browser: str, size: tuple[int, int] = (1600, 1000)) -> None:
        self._size = size
        self._process, self._send, self._receive = _launch(browser, size)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        self.call("Page.enable", self._session)  # else scripts added for new documents never run
        self.call("Emulation.setDeviceMetricsOverride", self._session, width=size[0],
                  height=size[1], deviceScaleFactor=1, mobile=False)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (DevToolsError, OSError):
            pass
        finally:
            self._process.kill()
            self._process.wait()
            self._send.close()
            self._receive.close()

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        """Send one DevTools command and return its result (events in between are skipped)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = self._receive.read(1 << 16)
            if not chunk:
                raise DevToolsError("the browser closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, url: str, local_storage: dict[str, Any] | None = None) -> None:
        """Load ``url`` with ``local_storage`` (key → JSON value) set before its scripts run."""
        if local_storage:
            items = json.dumps({key: json.dumps(value) for key, value in local_storage.items()})
            script = f"Object.entries({items}).forEach(([k, v]) => localStorage.setItem(k, v));"
            self.call("Page.addScriptToEvaluateOnNewDocument", self._session, source=script)
        self.call("Page.navigate", self._session, url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", self._session, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until_still(self, expression: str, timeout_s: float = 30, still_s: float = 1.5):
        """Wait until ``expression`` gives a truthy value that stays the same for ``still_s``
        (a layout done animating); return it, or raise after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value != last:
                last, since = value, time.monotonic()
            elif value and time.monotonic() - since >= still_s:
                return value
            time.sleep(0.25)
        raise DevToolsError(f"{expression} did not settle in {timeout_s:.0f} s (last: {last!r})")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", self._session, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def _launch(browser: str, size: tuple[int, int]):
    """Start Chromium with its DevTools pipe on fds 3 (commands in) and 4 (replies out)."""
    commands_read, commands_write = os.pipe()
    replies_read, replies_write = os.pipe()

    def wire_pipe() -> None:  # in the child: put the pipe ends where Chromium expects them
        commands, replies = os.dup(commands_read), os.dup(replies_write)
        os.dup2(commands, 3)
        os.dup2(replies, 4)

    process = subprocess.Popen(
        [browser, *HEADLESS_FLAGS, "--remote-debugging-pipe", f"--window-size={size[0]},{size[1]}",
         "about:blank"],
        pass_fds=(3, 4), preexec_fn=wire_pipe,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(commands_read)
    os.close(replies_write)
    return process, os.fdopen(commands_write, "wb", buffering=0), os.fdopen(replies_read, "rb",
                                                                            buffering=0)
