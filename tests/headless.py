"""Headless Chromium for the HTML page tests (the report, the viewer): find a browser, load a page,
and return the DOM after its scripts ran with what the page logged to its console."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: a console message as Chromium logs it with --enable-logging=stderr: "...:INFO:CONSOLE(12)] "text", source: ..."
CONSOLE = re.compile(r':(?:INFO|WARNING|ERROR):CONSOLE(?:\(\d+\)|:\d+)\]\s*"(.*)", source:')


def browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    for b in BROWSERS:
        path = shutil.which(b)
        if path:
            return path
    return None


def need_browser() -> str:
    """The browser, or skip the test saying how to install one."""
    b = browser()
    if b is None:
        pytest.skip("no chromium/chromium-browser/google-chrome on PATH (install it: .ci/install-system.sh)")
    return b


def dump_dom(page: Path, tmp_path: Path, fragment: str = "", budget_ms: int = 3000) -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran, the console messages it logged); asserts Chromium ran."""
    profile = tmp_path / "profile"
    cmd = [need_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}", "--dump-dom",
           page.resolve().as_uri() + fragment]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout, CONSOLE.findall(proc.stderr)
