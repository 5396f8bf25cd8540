"""The Mini App's test helpers, in one place: initData signed as Telegram signs it, a free port,
and headless Chromium (Debian's, driven by Playwright; never `playwright install`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def sign_init_data(
    bot_token: str, user: dict[str, Any] | str, /, *, auth_date: int | None = None,
    **fields: str,
) -> str:
    """``Telegram.WebApp.initData`` for ``user`` (a dict, or JSON as is), signed the way
    Telegram's docs describe: hash = hex HMAC-SHA256(data-check-string) under
    HMAC-SHA256("WebAppData", bot token)."""
    values = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": user if isinstance(user, str)
        else json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
        **fields,
    }
    check = "\n".join(f"{key}={values[key]}" for key in sorted(values))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    values["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(values)


def screenshot_path(name: str) -> Path:
    """Where a browser test saves its picture: ``SCREENSHOTS_DIR`` (``docs/images`` refreshes
    the README's pictures), else the temp folder, so a test run leaves the checkout as it was."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def free_port() -> int:
    """A port nothing listens on now (the web server binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None. With REQUIRE_BROWSER=1 (.ci/run) a
    missing browser fails them instead of skipping."""
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    elif not _playwright_importable():
        reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is not None and os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    return reason


def _playwright_importable() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return True


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, or the test is skipped (failed under REQUIRE_BROWSER=1)."""
    reason = browser_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def only_to(context: BrowserContext, base_url: str) -> list[str]:
    """Abort every request of ``context`` that is not to ``base_url``'s host and port (as if
    offline but for the bot's server); returns the list of blocked URLs, filled as they come."""
    allowed = urlsplit(base_url).netloc
    blocked: list[str] = []

    async def gate(route: Any) -> None:
        if urlsplit(route.request.url).netloc == allowed:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", gate)
    return blocked
