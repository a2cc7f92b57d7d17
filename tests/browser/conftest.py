"""Browser fixtures: Debian's Chromium driven by Playwright (Python), installed by scripts/setup_browser.sh."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup_browser.sh"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _ensure_chromium() -> str | None:
    """Install Chromium if missing; the reason it cannot be had, or None when it is there."""
    if not CHROMIUM.exists():
        result = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0 or not CHROMIUM.exists():
            return f"chromium could not be installed by {SETUP.name}: {(result.stderr or result.stdout)[-400:]}"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A Chromium browser context with a fresh profile, shared by the session's browser tests."""
    reason = _ensure_chromium()
    if reason:
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    profile = tempfile.mkdtemp(prefix="fedmarket-chromium-")
    with sync_api.sync_playwright() as pw:
        # a new, empty profile directory for every session
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=FLAGS, headless=True, viewport={"width": 1280, "height": 900}
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
