"""Headless Chromium for the tests that look at the product as a user does (kedro-viz, MLflow UI).

``chromium()`` gives the browser's path. When it is absent and the machine allows it (root with
``apt-get``, Debian's ``chromium`` package), it is installed once; otherwise the calling test is
skipped with the reason. ``look`` drives the browser from its command line (a screenshot and
the rendered DOM in one start), so no WebDriver or browser download is needed (``devtools.Page``
speaks DevTools where a page must be set up first). ``serve``
runs a web server (``kedro viz run``, ``mlflow ui``) in a subprocess until its page answers, and
stops it afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEADLESS_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--no-first-run", "--disable-extensions")


def _which_browser() -> str | None:
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


@functools.lru_cache(maxsize=1)
def _install_chromium() -> tuple[str | None, str]:
    """(path, '') once installed, or (None, why it could not be)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and this user cannot apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for attempt in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        if attempt is install and done.returncode == 0:
            break
    path = _which_browser()
    return (path, "") if path else (None, f"apt-get install chromium failed: {done.stderr[-300:]}")


def chromium() -> str:
    """Path of a headless-capable Chromium; installs Debian's when absent, else skips the test."""
    path = _which_browser()
    if path:
        return path
    path, why = _install_chromium()
    if not path:
        pytest.skip(why)
    return path


def free_port() -> int:
    """A free loopback port below 49152: kedro-viz refuses the ephemeral range above it, where
    the ports the system hands out for port 0 usually lie."""
    for port in random.sample(range(20_000, 49_000), 50):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free loopback port between 20000 and 49000")


def wait_for(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Return when ``url`` answers 200; fail the test with the server's output otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode} before {url} answered:\n"
                        f"{_output(process)}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout_s:.0f} s")


def _output(process: subprocess.Popen) -> str:
    if process.stdout is None:
        return ""
    with contextlib.suppress(Exception):
        return process.stdout.read()[-3000:]
    return ""


@contextlib.contextmanager
def serve(command: Sequence[str], url: str, cwd: Path, timeout_s: float = 120,
          env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run ``command`` (a web server) until ``url`` answers; stop it (and its children) after."""
    process = subprocess.Popen(list(command), cwd=cwd, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        wait_for(url, timeout_s, process)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _browse(browser: str, url: str, extra: Sequence[str], wait_ms: int,
            size: tuple[int, int]) -> subprocess.CompletedProcess:
    command = [browser, *HEADLESS_FLAGS, f"--window-size={size[0]},{size[1]}",
               f"--virtual-time-budget={wait_ms}", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120 + wait_ms / 1000)


def look(browser: str, url: str, path: Path, *, wait_ms: int = 10_000,
         size: tuple[int, int] = (1600, 1000)) -> str:
    """A PNG of ``url`` and its DOM after ``wait_ms`` of (virtual) page time, from one browser
    start (a single-page app such as MLflow's takes seconds to start each time): writes the
    PNG, returns the DOM (what a user would see, as HTML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _browse(browser, url, [f"--screenshot={path}", "--dump-dom"], wait_ms, size)
    assert done.returncode == 0 and path.is_file(), f"chromium could not render {url}: " \
        f"{done.stderr[-1000:]}"
    return done.stdout


def screenshot_dir(tmp_path: Path) -> Path:
    """Where tests keep their screenshots: ``$KIMI_SCREENSHOT_DIR`` when set (to look at them
    after the run), else the test's temporary folder."""
    folder = Path(os.environ.get("KIMI_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
