"""Helpers of the review page's browser tests: Debian's Chromium driven by Playwright, in the test's own event loop.

The browser is found through ``SCENEFORGE_CHROMIUM`` or ``/usr/bin/chromium`` (Playwright's own browser
download is not used). A machine without it skips the browser tests with the reason; in CI (``CI=true``)
a missing browser fails them instead. Every console error and uncaught page error is collected: a test
ends by finding none (``Browser.errors``), unless it expected one and took it out.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why (a skip, or a failure in CI)
    expect = None  # type: ignore[assignment]

# Read at import: the autouse fixture that isolates tests from the environment removes SCENEFORGE_* variables.
CHROMIUM = os.environ.get("SCENEFORGE_CHROMIUM") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
# The closed network refuses Chromium's background connections: switch them off.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SCENEFORGE_CHROMIUM to a "
                "Chromium or Chrome executable)")
    return None


@dataclass
class Browser:
    """One browser page and what went wrong in it."""

    page: Any
    base: str = ""
    errors: list[str] = field(default_factory=list)

    async def open(self, base: str, path: str = "/") -> Any:
        self.base = base
        await self.page.goto(base + path)
        return self.page

    def take_errors(self, *expected: str) -> list[str]:
        """Take out the errors containing one of ``expected`` (a test's deliberate 401 or 422), return them."""
        taken = [e for e in self.errors if any(x in e for x in expected)]
        self.errors[:] = [e for e in self.errors if e not in taken]
        return taken


@contextlib.asynccontextmanager
async def launch(viewport: dict[str, int]) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    with tempfile.TemporaryDirectory() as profile:
        async with async_playwright() as pw:
            ctx = await pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS,
                                                              headless=True, viewport=viewport)
            ctx.set_default_timeout(TIMEOUT_MS)
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            browser = Browser(page)
            page.on("console", lambda msg: browser.errors.append(f"console: {msg.text} ({msg.location.get('url')})")
                    if msg.type == "error" else None)
            page.on("pageerror", lambda exc: browser.errors.append(f"page error: {exc}"))
            try:
                yield browser
            finally:
                await ctx.close()


def require_browser() -> None:
    reason = missing_browser()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true needs the browser tests to run, but {reason}", pytrace=False)
        pytest.skip(reason)


def png_bytes(rgb: tuple[int, int, int], size: tuple[int, int] = (48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "PNG")
    return buf.getvalue()
